// Command misbehave is a test helper for the supervisor: an HTTP server on
// $PORT whose faults are chosen by flags.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ignoreTerm := flag.Bool("ignore-term", false, "ignore SIGTERM")
	fork := flag.Int("fork", 0, "start this many child processes that ignore SIGTERM")
	child := flag.Bool("child", false, "run as a forked child: sleep forever")
	setsid := flag.Bool("setsid", false, "start the --fork children in their own session (setsid), out of the process group")
	clearEnv := flag.Bool("clear-env", false, "start the --fork children with an empty environment (no RUNWAY_* marker)")
	forkDelay := flag.Duration("fork-delay", 0, "wait this long before starting the --fork children")
	crashAfter := flag.Duration("crash-after", 0, "exit 3 after this long")
	healthFile := flag.String("health-file", "", "answer 500 on /healthz while this file exists")
	spam := flag.Int("spam", 0, "write this many lines to stdout and stderr at start")
	flag.Parse()

	if *child {
		signal.Ignore(syscall.SIGTERM)
		select {}
	}
	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	} else {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		go func() {
			<-c
			fmt.Println("misbehave: SIGTERM, exiting")
			os.Exit(0)
		}()
	}
	if *fork > 0 {
		time.Sleep(*forkDelay)
	}
	for i := 0; i < *fork; i++ {
		cmd := exec.Command(os.Args[0], "--child")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if *setsid {
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		}
		if *clearEnv {
			cmd.Env = []string{}
		}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "fork:", err)
			os.Exit(1)
		}
		fmt.Printf("child pid %d\n", cmd.Process.Pid)
	}
	for i := 0; i < *spam; i++ {
		fmt.Printf("spam line %06d %s\n", i, strings.Repeat("x", 100))
		if i%10 == 0 {
			fmt.Fprintf(os.Stderr, "spam error %06d\n", i)
		}
	}
	if *crashAfter > 0 {
		go func() {
			time.Sleep(*crashAfter)
			fmt.Fprintln(os.Stderr, "misbehave: crashing")
			os.Exit(3)
		}()
	}
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if *healthFile != "" {
			if _, err := os.Stat(*healthFile); err == nil {
				http.Error(w, "sick", http.StatusInternalServerError)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("misbehave listening on %s\n", ln.Addr())
	http.Serve(ln, nil)
}
