package output

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"A PIN is required to lock this Mac.": "A PIN is required to lock this Mac.",
		"Zugriff verweigert – 日本語 \uFFFD":     "Zugriff verweigert – 日本語 \uFFFD",
		"oops\nD2  acknowledged":              `oops\nD2  acknowledged`,
		"a\r\nb\tc":                           `a\r\nb\tc`,
		"\x1b[2K\x1b[1Agreen":                 `\x1b[2K\x1b[1Agreen`,
		"bell\a del\x7f":                      `bell\x07 del\x7f`,
		"c1 \u009b31m nel\u0085":              `c1 \u009b31m nel\u0085`,
		"ls\u2028ps\u2029":                    `ls\u2028ps\u2029`,
		"abc\u202edcba\u202c":                 `abc\u202edcba\u202c`,
		"\u2066iso\u2069 \u2067x\u2068":       `\u2066iso\u2069 \u2067x\u2068`,
		"bad \xff\xfe bytes":                  `bad \xff\xfe bytes`,
		"back\\slash stays":                   `back\slash stays`,
	} {
		got := Escape(in)
		if got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
		if strings.ContainsAny(got, "\n\r\x1b\u202e") {
			t.Errorf("Escape(%q) = %q still holds a control character", in, got)
		}
	}
}

func FuzzEscape(f *testing.F) {
	f.Add("oops\nD2  acknowledged")
	f.Add("\x1b[31m\u202e\xff")
	f.Fuzz(func(t *testing.T, s string) {
		got := Escape(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Escape(%q) = %q is not UTF-8", s, got)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f || unsafeRune(r) {
				t.Fatalf("Escape(%q) holds %U", s, r)
			}
		}
	})
}
