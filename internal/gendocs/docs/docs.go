// Package docs generates completion scripts and man pages from mdmctl's
// command tree.
package docs

import (
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/mdmctl/mdmctl/pkg/cmd/root"
	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
)

// CompletionFiles are the scripts in completions/, one per shell.
var CompletionFiles = map[string]func(*cobra.Command, string) error{
	"mdmctl.bash": func(c *cobra.Command, p string) error { return c.GenBashCompletionFileV2(p, true) },
	"mdmctl.zsh":  func(c *cobra.Command, p string) error { return c.GenZshCompletionFile(p) },
	"mdmctl.fish": func(c *cobra.Command, p string) error { return c.GenFishCompletionFile(p, true) },
	"mdmctl.ps1":  func(c *cobra.Command, p string) error { return c.GenPowerShellCompletionFileWithDesc(p) },
}

func tree() *cobra.Command {
	streams, _, _, _ := iostreams.Test()
	cmd := root.NewCmdRoot(&cmdutil.Factory{IOStreams: streams, Getenv: func(string) string { return "" }, Now: time.Now})
	cmd.InitDefaultCompletionCmd()
	return cmd
}

// Completions writes every shell's completion script into dir.
func Completions(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cmd := tree()
	for name, gen := range CompletionFiles {
		if err := gen(cmd, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// Man writes a man page per command into dir. The date comes from
// SOURCE_DATE_EPOCH when set, so a release rebuilds identical pages.
func Man(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	date := time.Now()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if secs, err := strconv.ParseInt(s, 10, 64); err == nil {
			date = time.Unix(secs, 0).UTC()
		}
	}
	header := &doc.GenManHeader{Title: "MDMCTL", Section: "1", Source: "mdmctl", Manual: "mdmctl manual", Date: &date}
	cmd := tree()
	cmd.DisableAutoGenTag = true
	return doc.GenManTree(cmd, header, dir)
}
