// Command runway is the single binary of Runway: CLI, server and agent.
package main

import (
	"os"

	"github.com/runwayhq/runway/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
