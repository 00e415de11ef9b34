// Command pause is the pod sandbox of internal/k8snode's real node: the
// process that holds a pod's namespaces, as Kubernetes' own pause image
// does. It waits for SIGINT or SIGTERM and exits 0.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	<-ch
}
