package suggest

import "testing"

func TestClosest(t *testing.T) {
	names := []string{"prod", "staging", "sandbox"}
	for in, want := range map[string]string{"prdo": "prod", "sandbx": "sandbox", "stagin": "staging", "qa": "", "": ""} {
		if got := Closest(in, names); got != want {
			t.Errorf("Closest(%q) = %q, want %q", in, got, want)
		}
	}
}
