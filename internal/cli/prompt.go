package cli

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// confirm asks a yes/no question on stdin; without a terminal it refuses so
// scripts must pass --yes.
func confirm(g *Globals, question string) (bool, error) {
	if f, ok := g.Stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice == 0 {
			return false, UsageErrorf("cannot ask %q without a terminal; pass --yes to go ahead without confirmation", question)
		}
	}
	fmt.Fprintf(g.Stdout, "%s [y/N] ", question)
	line, err := bufio.NewReader(g.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return false, UsageErrorf("%s: no answer; pass --yes to skip confirmation", question)
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}
