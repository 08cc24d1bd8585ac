package iostreams

import "testing"

func TestColorWanted(t *testing.T) {
	tests := []struct {
		env  map[string]string
		tty  bool
		want bool
	}{
		{nil, true, true},
		{nil, false, false},
		{map[string]string{"NO_COLOR": "1"}, true, false},
		{map[string]string{"NO_COLOR": ""}, true, true}, // empty means unset
		{map[string]string{"CLICOLOR": "0"}, true, false},
		{map[string]string{"TERM": "dumb"}, true, false},
		{map[string]string{"CLICOLOR_FORCE": "1"}, false, true},
		{map[string]string{"CLICOLOR_FORCE": "0"}, false, false},
		{map[string]string{"CLICOLOR_FORCE": "1", "NO_COLOR": "1"}, false, false},
	}
	for _, tt := range tests {
		if got := colorWanted(func(k string) string { return tt.env[k] }, tt.tty); got != tt.want {
			t.Errorf("env %v tty %t: color %t, want %t", tt.env, tt.tty, got, tt.want)
		}
	}
}

func TestPromptNeedsBothEnds(t *testing.T) {
	s, _, _, _ := Test()
	if s.CanPrompt() {
		t.Error("test streams can prompt")
	}
	// The question goes to stderr: stdout may be piped (-o json | jq).
	s.SetTTY(true, false, true)
	if !s.CanPrompt() {
		t.Error("cannot prompt with stdout piped")
	}
	s.SetTTY(true, true, false)
	if s.CanPrompt() {
		t.Error("prompting with stderr redirected")
	}
	s.SetTTY(false, true, true)
	if s.CanPrompt() {
		t.Error("prompting with stdin redirected")
	}
}
