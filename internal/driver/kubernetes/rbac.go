package kubernetes

import (
	"bytes"
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// RBACOptions name whom the Role is granted to.
type RBACOptions struct {
	// Namespace is the environment's namespace, where the Role and its
	// binding live and grant.
	Namespace string
	// ServiceAccount and ServiceAccountNamespace are the server's service
	// account (runway in namespace runway by default).
	ServiceAccount, ServiceAccountNamespace string
}

// RoleName is the name of the server's Role and RoleBinding, and of the
// proxy's.
const RoleName = "runway-server"

// ServerRules are what the driver does in its namespace, and nothing else:
// no cluster-wide rights, no access to objects it does not manage beyond
// reading. Secrets are created, read and updated (their owners) by name
// (a release's), never listed.
func ServerRules() []rbacv1.PolicyRule {
	rw := []string{"get", "list", "watch", "create", "update", "patch", "delete"}
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: rw},
		{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"services", "configmaps"}, Verbs: rw},
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "create"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "create", "update", "delete"}},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: rw},
		// The proxy replicas' statistics (stats.go): read only.
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list"}},
	}
}

// ProxyRules are what the in-cluster proxy reads, its route table and the
// groups' endpoints, and what it writes: each replica its statistics Lease
// (created, read back after a restart, renewed), and the Leases of
// replicas gone for StatsExpiry (listed, deleted). Leases are named by
// the replica, so the rights cannot name them; Runway keeps nothing else
// in Leases.
func ProxyRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{RouteTable}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "create", "update", "delete"}},
	}
}

// RBAC returns the server's Role and RoleBinding and the proxy's.
func RBAC(o RBACOptions) []any {
	if o.ServiceAccount == "" {
		o.ServiceAccount = "runway"
	}
	if o.ServiceAccountNamespace == "" {
		o.ServiceAccountNamespace = "runway"
	}
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: o.Namespace, Labels: map[string]string{LabelManaged: ManagedBy}}
	}
	tm := func(kind string) metav1.TypeMeta {
		return metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: kind}
	}
	return []any{
		&rbacv1.Role{TypeMeta: tm("Role"), ObjectMeta: meta(RoleName), Rules: ServerRules()},
		&rbacv1.RoleBinding{TypeMeta: tm("RoleBinding"), ObjectMeta: meta(RoleName),
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: RoleName},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: o.ServiceAccount, Namespace: o.ServiceAccountNamespace}}},
		&rbacv1.Role{TypeMeta: tm("Role"), ObjectMeta: meta(ProxyName), Rules: ProxyRules()},
		&rbacv1.RoleBinding{TypeMeta: tm("RoleBinding"), ObjectMeta: meta(ProxyName),
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: ProxyName},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: ProxyName, Namespace: o.Namespace}}},
	}
}

// RBACYAML is RBAC as a multi-document YAML for kubectl apply -f -.
func RBACYAML(o RBACOptions) ([]byte, error) {
	if !dnsLabel.MatchString(o.Namespace) || len(o.Namespace) > 63 {
		return nil, fmt.Errorf("namespace %q: want a DNS label such as acme-production", o.Namespace)
	}
	var b bytes.Buffer
	b.WriteString("# Runway's rights in namespace " + o.Namespace + " (runway kubernetes rbac): the server's Role, bound to its\n# service account, and the in-cluster proxy's. Nothing cluster-wide.\n")
	for _, obj := range RBAC(o) {
		y, err := yaml.Marshal(obj)
		if err != nil {
			return nil, err
		}
		b.WriteString("---\n")
		b.Write(bytes.ReplaceAll(y, []byte("  creationTimestamp: null\n"), nil))
	}
	return b.Bytes(), nil
}

// ApplyRBAC creates RBAC(o)'s objects, as `runway kubernetes rbac | kubectl
// apply -f -` does on a new namespace (the tests bind the Roles with it).
func ApplyRBAC(ctx context.Context, c kubernetes.Interface, o RBACOptions) error {
	for _, obj := range RBAC(o) {
		var err error
		switch r := obj.(type) {
		case *rbacv1.Role:
			_, err = c.RbacV1().Roles(o.Namespace).Create(ctx, r, metav1.CreateOptions{})
		case *rbacv1.RoleBinding:
			_, err = c.RbacV1().RoleBindings(o.Namespace).Create(ctx, r, metav1.CreateOptions{})
		default:
			err = fmt.Errorf("RBAC gave a %T", obj)
		}
		if err != nil {
			return fmt.Errorf("kubernetes: create %T: %w", obj, err)
		}
	}
	return nil
}
