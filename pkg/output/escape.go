package output

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Escape makes text a device or server sent (a LocalizedDescription, an
// error body, a status) safe to print on a terminal line: newlines and
// other C0 controls, DEL, C1 controls, the Unicode line and paragraph
// separators, bidi embeddings, overrides and isolates (U+202A–U+202E,
// U+2066–U+2069) and bytes that are not UTF-8 are written as Go escapes
// (\n, \x1b, \u202e). Otherwise a description holding "\nD2  acknowledged"
// would print a forged line for another device, an ESC sequence could
// rewrite the screen, and an override could make a line read backwards.
// JSON output needs none of this: its encoder escapes what it must.
func Escape(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	for i, r := range s {
		if r < 0x20 || r == 0x7f || unsafeRune(r) || (r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD")) {
			return true
		}
	}
	return false
}

// unsafeRune: C1 controls, line and paragraph separators, bidi controls.
func unsafeRune(r rune) bool {
	return (r >= 0x80 && r <= 0x9f) || r == 0x2028 || r == 0x2029 ||
		(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}
