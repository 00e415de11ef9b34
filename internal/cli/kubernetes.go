package cli

import (
	"github.com/spf13/cobra"

	k8sdriver "github.com/runwayhq/runway/internal/driver/kubernetes"
)

// newKubernetesCmd: helpers of target kubernetes.
func newKubernetesCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "kubernetes", Short: "Helpers of target kubernetes (RBAC)"}
	var o k8sdriver.RBACOptions
	rbac := &cobra.Command{
		Use:   "rbac --namespace NS",
		Short: "Print the minimal Role and RoleBinding Runway's server (and its proxy) need in a namespace",
		Long: `Prints, as YAML for kubectl apply -f -, the Role and RoleBinding the Runway server's
service account needs in an environment's namespace, and the in-cluster proxy's.
Nothing is cluster-wide.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Namespace == "" {
				return UsageErrorf("--namespace is required (an environment's namespace, by default <project>-<environment>)")
			}
			y, err := k8sdriver.RBACYAML(o)
			if err != nil {
				return UsageErrorf("%v", err)
			}
			_, err = g.Stdout.Write(y)
			return err
		},
	}
	f := rbac.Flags()
	f.StringVar(&o.Namespace, "namespace", "", "the environment's namespace")
	f.StringVar(&o.ServiceAccount, "service-account", "runway", "the server's service account")
	f.StringVar(&o.ServiceAccountNamespace, "service-account-namespace", "runway", "the namespace of the server's service account")
	cmd.AddCommand(rbac)
	return cmd
}
