package kubernetes

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Client connects to a cluster as config.Kubernetes says: kubeconfig (""
// : KUBECONFIG, else ~/.kube/config, else the in-cluster service account)
// and context ("": the current one).
func Client(kubeconfig, context string) (kubernetes.Interface, *rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes: client configuration: %w", err)
	}
	cfg.UserAgent = "runway"
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes: %w", err)
	}
	return c, cfg, nil
}

// TargetKind is the engine's key of a traffic mode's driver and the
// config's of its limits (config.Environment.KubernetesTarget).
func TargetKind(traffic string) string {
	if traffic == "service" {
		return "kubernetes/service"
	}
	return "kubernetes"
}
