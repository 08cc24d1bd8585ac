// Command mdmctl locks Apple devices through their MDM server.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mdmctl/mdmctl/pkg/cmd/factory"
	"github.com/mdmctl/mdmctl/pkg/cmd/root"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
	"github.com/mdmctl/mdmctl/pkg/output"
)

func main() {
	os.Exit(run(iostreams.System(), os.Args[1:], os.Getenv))
}

// run runs mdmctl with args on streams, its environment read through
// getenv, and returns the exit code.
func run(streams *iostreams.IOStreams, args []string, getenv func(string) string) int {
	f := factory.New(streams, getenv)
	ctx, stop := interruptContext()
	defer stop()
	cmd := root.NewCmdRoot(f)
	cmd.SetArgs(args)
	err := root.UnknownCommand(cmd.ExecuteContext(ctx))
	if err != nil && !exitcode.IsSilent(err) {
		fmt.Fprintln(f.IOStreams.ErrOut, "error: "+oneLine(err.Error()))
		if hint := exitcode.HintOf(err); hint != "" {
			fmt.Fprintln(f.IOStreams.ErrOut, output.Escape(hint))
		}
	}
	return exitcode.Of(err)
}

// interruptContext is cancelled by the first SIGINT or SIGTERM, so a run
// stops sending and reports what it did; a second one exits at once.
func interruptContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel()
		<-sigs
		os.Exit(exitcode.Interrupted)
	}()
	return ctx, func() { signal.Stop(sigs); cancel() }
}

// oneLine folds a multi-line message (some libraries' errors) into the one
// line a script can log and match, and escapes the controls left (a
// server's error body may hold any).
func oneLine(msg string) string {
	return output.Escape(strings.Join(strings.Fields(msg), " "))
}
