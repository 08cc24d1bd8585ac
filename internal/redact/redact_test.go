package redact

import (
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://mdm.example.com/api", "https://mdm.example.com/api"},
		{"https://nanomdm:S3CRET@mdm.example.com/api", "https://REDACTED@mdm.example.com/api"},
		{"https://S3CRET@mdm.example.com", "https://REDACTED@mdm.example.com"},
		{"htps://nanomdm:S3CRET@host", "htps://REDACTED@host"},
		{"nanomdm:S3CRET@host", "REDACTED@host"},
		// Does not parse: a '/' in the password ends the authority early.
		{"https://nanomdm:S3/CRET@host/x", "https://REDACTED@host/x"},
		{"https://nanomdm:S3%zzCRET@host", "https://REDACTED@host"},
		{"https://u:p@a@host", "https://REDACTED@host"},
		// A parsed URL keeps an '@' in its path or query.
		{"https://host/raw/{udid}?a=b@c", "https://host/raw/{udid}?a=b@c"},
		{"https://u:S3CRET@host/p@th", "https://REDACTED@host/p@th"},
		{"", ""},
		{"::not a url", "::not a url"},
	}
	for _, tt := range tests {
		got := URL(tt.in)
		if got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(got, "S3") {
			t.Errorf("URL(%q) = %q shows part of the password", tt.in, got)
		}
	}
}

func FuzzURL(f *testing.F) {
	f.Add("https://nanomdm:S3CRET@host/x")
	f.Add("htps://a:b@c")
	f.Fuzz(func(t *testing.T, raw string) {
		got := URL(raw)
		if !strings.Contains(raw, "@") && got != raw {
			t.Fatalf("URL(%q) = %q changed a URL without userinfo", raw, got)
		}
		if u, err := url.Parse(got); err == nil && u.User != nil && u.User.String() != Placeholder {
			t.Fatalf("URL(%q) = %q keeps userinfo %q", raw, got, u.User.String())
		}
	})
}
