package apple

import (
	"strings"
	"testing"
)

func TestValidatePIN(t *testing.T) {
	valid := []string{"123456", "000000", "999999"}
	invalid := []string{"", "12345", "1234567", "12345a", " 12345", "12345 ", "12 456", "123456\n",
		"١٢٣٤٥٦", "１２３４５６", "۱۲۳۴۵۶", "12345６", "-12345", "+12345", "1e5000"}
	for _, pin := range valid {
		if err := ValidatePIN(pin); err != nil {
			t.Errorf("ValidatePIN(%q) = %v, want ok", pin, err)
		}
	}
	for _, pin := range invalid {
		err := ValidatePIN(pin)
		if err == nil {
			t.Errorf("ValidatePIN(%q) accepted", pin)
			continue
		}
		if pin != "" && strings.Contains(err.Error(), strings.TrimSpace(pin)) {
			t.Errorf("ValidatePIN(%q) error echoes the PIN: %v", pin, err)
		}
	}
}

func TestValidateText(t *testing.T) {
	ok := []string{"", "Return to IT", "408-555-5555", "+1 (408) 555-5555", "Rückgabe an die IT 🔒", "電話してください"}
	bad := []string{"a\x00b", "a\x1bb", "line\nbreak", "tab\there", "del\x7f", "\xff\xfe", "bell\a", "nel\u0085", strings.Repeat("x", maxTextLen+1)}
	for _, s := range ok {
		if err := ValidateText(s); err != nil {
			t.Errorf("ValidateText(%q) = %v", s, err)
		}
	}
	for _, s := range bad {
		if err := ValidateText(s); err == nil {
			t.Errorf("ValidateText(%q) accepted", s)
		}
	}
}

func TestValidateTargetID(t *testing.T) {
	ok := []string{"00008020-000915083C80012E", "2E8A1C3F-0B11-4D04-9A10-000000001104", "DEV00001", "enrollment.id_1:x"}
	bad := map[string]string{
		"":                       "empty",
		"has space":              "whitespace",
		"tab\there":              "whitespace",
		"new\nline":              "whitespace",
		"nbsp\u00a0x":            "whitespace",
		"\xff":                   "UTF-8",
		strings.Repeat("x", 257): "longer",
		"zero\u200bwidth":        "invisible character U+200B",
		"\ufeffBOM":              "invisible character U+FEFF",
		"joiner\u200dx":          "U+200D",
		"mark\u200ex":            "U+200E",
		"soft\u00adhyphen":       "U+00AD",
	}
	for _, id := range ok {
		if err := ValidateTargetID(id); err != nil {
			t.Errorf("ValidateTargetID(%q) = %v", id, err)
		}
	}
	for id, want := range bad {
		err := ValidateTargetID(id)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateTargetID(%.30q) = %v, want an error mentioning %q", id, err, want)
		}
	}
}

func TestValidateModel(t *testing.T) {
	for _, m := range []string{"MacBookAir10,1", "iPhone11,8", "Foo1,1", "VirtualMac2,1"} {
		if err := ValidateModel(m); err != nil {
			t.Errorf("ValidateModel(%q) = %v", m, err)
		}
	}
	for _, m := range []string{"Mac Book", "Mac\x00", "Mäc1,1", strings.Repeat("M", 65)} {
		if err := ValidateModel(m); err == nil {
			t.Errorf("ValidateModel(%q) accepted", m)
		}
	}
}
