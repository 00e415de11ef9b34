package kubernetes

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Clusters connects to the clusters that environments' kubernetes blocks
// name (kubeconfig, context), for a server whose flags say which kubeconfig
// files it may read: a project's manifest must not make the server read
// any file it names. Clients are made on first use and kept, one per
// (kubeconfig, context); a kubeconfig file is read when a pair is first
// used, so a changed file takes effect when the server restarts.
type Clusters struct {
	def        kubernetes.Interface
	defPath    string // the first allowed kubeconfig ("": KUBECONFIG, ~/.kube/config, in-cluster)
	defContext string // the server's --kube-context ("": the kubeconfig's current one)
	allowed    map[string]bool
	flags      []string

	mu      sync.Mutex
	clients map[clusterKey]kubernetes.Interface
}

type clusterKey struct{ path, context string }

// NewClusters returns the clusters of a server whose default cluster is
// def, connected through kubeconfigs[0] (none: the default loading rules)
// and context; every file of kubeconfigs may be named by an environment.
func NewClusters(def kubernetes.Interface, kubeconfigs []string, context string) *Clusters {
	c := &Clusters{def: def, defContext: context, allowed: map[string]bool{}, clients: map[clusterKey]kubernetes.Interface{}}
	for i, k := range kubeconfigs {
		p := cleanPath(k)
		if i == 0 {
			c.defPath = p
		}
		c.allowed[p] = true
		c.flags = append(c.flags, p)
	}
	return c
}

// cleanPath expands a leading ~/ to the server's home and makes the path
// absolute and clean, so one file has one spelling.
func cleanPath(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, rest)
		}
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return filepath.Clean(p)
}

// For returns the client of the cluster an environment's kubernetes block
// names: kubeconfig "" is the server's own (its first --kubeconfig), and
// context "" is the server's --kube-context for the server's kubeconfig,
// else the kubeconfig's current context. A kubeconfig the server was not
// started with, or a context the kubeconfig lacks, is refused with what to
// do.
func (c *Clusters) For(kubeconfig, context string) (kubernetes.Interface, error) {
	if kubeconfig == "" && context == "" {
		return c.def, nil
	}
	path := c.defPath
	if kubeconfig != "" {
		path = cleanPath(kubeconfig)
		if !c.allowed[path] {
			given := "none"
			if len(c.flags) > 0 {
				given = strings.Join(c.flags, ", ")
			}
			return nil, fmt.Errorf("kubernetes.kubeconfig %s is not a kubeconfig this server reads (its --kubeconfig: %s): a manifest may only name a file the server allows; restart runway server with --kubeconfig %s added (the flag repeats; the first is the default cluster), or leave kubeconfig out to use the server's", kubeconfig, given, path)
		}
	}
	if path == c.defPath && context == "" {
		context = c.defContext
		if context == "" {
			return c.def, nil
		}
	}
	key := clusterKey{path, context}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[key]; ok {
		return cl, nil
	}
	raw, name, err := c.load(path)
	if err != nil {
		return nil, err
	}
	ctx := context
	if ctx == "" {
		ctx = raw.CurrentContext
	}
	if _, ok := raw.Contexts[ctx]; !ok {
		names := make([]string, 0, len(raw.Contexts))
		for n := range raw.Contexts {
			names = append(names, n)
		}
		sort.Strings(names)
		have := "it has none"
		if len(names) > 0 {
			have = "its contexts: " + strings.Join(names, ", ")
		}
		if ctx == "" {
			return nil, fmt.Errorf("kubeconfig %s has no current context (%s): give kubernetes.context", name, have)
		}
		return nil, fmt.Errorf("kubernetes.context %q is not a context of kubeconfig %s (%s): name one of them", ctx, name, have)
	}
	if path == c.defPath && (ctx == c.defContext || c.defContext == "" && ctx == raw.CurrentContext) {
		c.clients[key] = c.def
		return c.def, nil
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, ctx, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes: context %s of kubeconfig %s: %w", ctx, name, err)
	}
	cfg.UserAgent = "runway"
	cl, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: context %s of kubeconfig %s: %w", ctx, name, err)
	}
	c.clients[key] = cl
	return cl, nil
}

// load reads a kubeconfig file ("": the default loading rules').
func (c *Clusters) load(path string) (*clientcmdapi.Config, string, error) {
	if path == "" {
		raw, err := clientcmd.NewDefaultClientConfigLoadingRules().Load()
		if err != nil {
			return nil, "", fmt.Errorf("kubernetes: the server's kubeconfig: %w", err)
		}
		return raw, "of the server (KUBECONFIG or ~/.kube/config)", nil
	}
	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes: read kubeconfig %s: %w", path, err)
	}
	return raw, path, nil
}
