// Package iostreams holds a command's standard streams and what they are
// connected to (terminal or not), and decides color once per stream.
package iostreams

import (
	"bytes"
	"io"
	"os"

	"github.com/fatih/color"
	"github.com/mattn/go-isatty"
)

// IOStreams are the streams a command reads and writes.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	inTTY, outTTY, errTTY bool
	colorOut, colorErr    bool
}

// System returns the process's streams; color follows the terminal and the
// NO_COLOR / CLICOLOR / CLICOLOR_FORCE / TERM=dumb conventions.
func System() *IOStreams {
	s := &IOStreams{
		In:     os.Stdin,
		Out:    os.Stdout,
		ErrOut: os.Stderr,
		inTTY:  isTerminal(os.Stdin),
		outTTY: isTerminal(os.Stdout),
		errTTY: isTerminal(os.Stderr),
	}
	s.colorOut = colorWanted(os.Getenv, s.outTTY)
	s.colorErr = colorWanted(os.Getenv, s.errTTY)
	return s
}

func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// colorWanted decides color for one stream: any opt-out wins, then
// CLICOLOR_FORCE, then whether the stream is a terminal.
func colorWanted(getenv func(string) string, tty bool) bool {
	// An empty NO_COLOR counts as unset, as no-color.org specifies.
	if getenv("NO_COLOR") != "" || getenv("CLICOLOR") == "0" || getenv("TERM") == "dumb" {
		return false
	}
	if v := getenv("CLICOLOR_FORCE"); v != "" && v != "0" {
		return true
	}
	return tty
}

// Test returns streams backed by buffers, none a terminal, without color.
func Test() (s *IOStreams, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// SetTTY marks the streams as terminals (tests of prompts and color).
func (s *IOStreams) SetTTY(in, out, errOut bool) { s.inTTY, s.outTTY, s.errTTY = in, out, errOut }

// IsStdoutTTY reports whether standard output is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.outTTY }

// IsStderrTTY reports whether standard error is a terminal.
func (s *IOStreams) IsStderrTTY() bool { return s.errTTY }

// CanPrompt is true only when a person can both see and answer a question.
// The question goes to stderr, so stdout may be piped (-o json | jq).
func (s *IOStreams) CanPrompt() bool { return s.inTTY && s.errTTY }

// DisableColor turns color off on both streams (--no-color).
func (s *IOStreams) DisableColor() { s.colorOut, s.colorErr = false, false }

// SetColor forces color on or off for both streams (tests).
func (s *IOStreams) SetColor(on bool) { s.colorOut, s.colorErr = on, on }

// ColorOut is the palette for standard output.
func (s *IOStreams) ColorOut() Palette { return Palette{on: s.colorOut} }

// ColorErr is the palette for standard error.
func (s *IOStreams) ColorErr() Palette { return Palette{on: s.colorErr} }

// Palette colors strings when its stream wants color. fatih/color's global
// switch looks only at stdout, so each palette enables colors explicitly.
type Palette struct{ on bool }

func (p Palette) paint(attr color.Attribute, s string) string {
	if !p.on {
		return s
	}
	c := color.New(attr)
	c.EnableColor()
	return c.Sprint(s)
}

// Green for success.
func (p Palette) Green(s string) string { return p.paint(color.FgGreen, s) }

// Yellow for warnings and partial outcomes.
func (p Palette) Yellow(s string) string { return p.paint(color.FgYellow, s) }

// Red for failures.
func (p Palette) Red(s string) string { return p.paint(color.FgRed, s) }

// Enabled reports whether the palette colors.
func (p Palette) Enabled() bool { return p.on }
