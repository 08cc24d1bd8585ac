// Command gendocs writes mdmctl's shell completions and man pages from the
// cobra command tree, so they never drift from the flags:
//
//	go run ./internal/gendocs -completions completions -man man
package main

//go:generate go run . -completions ../../completions

import (
	"flag"
	"fmt"
	"os"

	"github.com/mdmctl/mdmctl/internal/gendocs/docs"
)

func main() {
	completions := flag.String("completions", "", "directory for the completion scripts")
	man := flag.String("man", "", "directory for the man pages")
	flag.Parse()
	if *completions == "" && *man == "" {
		fmt.Fprintln(os.Stderr, "usage: gendocs [-completions DIR] [-man DIR]")
		os.Exit(2)
	}
	if *completions != "" {
		if err := docs.Completions(*completions); err != nil {
			fmt.Fprintln(os.Stderr, "gendocs:", err)
			os.Exit(1)
		}
	}
	if *man != "" {
		if err := docs.Man(*man); err != nil {
			fmt.Fprintln(os.Stderr, "gendocs:", err)
			os.Exit(1)
		}
	}
}
