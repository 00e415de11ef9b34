// Package kubernetes is the Kubernetes target (target.Target): a group is a
// Deployment, named by the group (within GroupNameMax) and labelled with
// its project, environment, service, release and group; the engine scales
// it and observes it from the Deployment's and its pods' status. A task is
// a Job named from the task id, so a server that crashed re-attaches to it.
// A release's pinned secrets are one Secret per release, given to the pods
// as env. Logs are read through the pods' log API.
//
// Traffic has two modes (config.Kubernetes.Traffic). In mode "service"
// (traffic_service.go) one Kubernetes Service per Runway service selects
// the pods: blue/green switches its selector between groups, and a canary
// is the ratio of the groups' instance counts, which the capabilities
// declare (ReplicaRatio) so that validation refuses canary weights no
// ratio gives. Mode "runway" (proxy.go) runs Runway's proxy in the cluster.
//
// Every call is idempotent and keeps no state in memory that a restarted
// server would need: what a call decided is in the cluster's objects
// (labels and annotations), read again by the next server.
package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/runenv"
	"github.com/runwayhq/runway/internal/target"
)

// Labels and annotations Runway sets on what it creates.
const (
	LabelManaged     = "app.kubernetes.io/managed-by"
	ManagedBy        = "runway"
	LabelProject     = "runway.dev/project"
	LabelEnvironment = "runway.dev/environment"
	LabelService     = "runway.dev/service"
	LabelRelease     = "runway.dev/release"
	LabelGroup       = "runway.dev/group"
	LabelTask        = "runway.dev/task"
	AnnotTaskID      = "runway.dev/task-id"
	AnnotTaskResult  = "runway.dev/task-result"
	AnnotRoutes      = "runway.dev/routes"
	AnnotPreview     = "runway.dev/preview"
	// ContainerName is the name of the service's container in every pod.
	ContainerName = "app"
)

// GroupNameMax is the longest group name: a Deployment's pods are named
// <deployment>-<10-character template hash>-<5 characters>, and a pod's
// name is its host name, at most 63 characters.
const GroupNameMax = 47

// PreStopSleep keeps a stopping pod's container running after the pod left
// its Service's endpoints, so that requests routed to it before the
// endpoints changed everywhere still find it.
const PreStopSleep = 3 * time.Second

// Options configure a Driver.
type Options struct {
	// Client talks to the cluster when every environment shares one.
	Client kubernetes.Interface
	// ClientFor returns the client of ref's environment's cluster (its
	// kubernetes block's kubeconfig and context); when set it is used
	// instead of Client. Its error (a kubeconfig the server does not allow,
	// an unknown context) is the user's: it reaches Validate and so the
	// release's creation.
	ClientFor func(ref target.ServiceRef) (kubernetes.Interface, error)
	// Namespace is the namespace of a service's environment ("": the
	// default, <project>-<environment>, config.Environment.KubernetesNamespace).
	Namespace func(ref target.ServiceRef) string
	// Traffic is config.TrafficService or config.TrafficRunway ("":
	// runway).
	Traffic string
	// Secrets returns the values of a release's pinned secrets by variable
	// name (nil: the release has none).
	Secrets func(ctx context.Context, release string) (map[string]string, error)
	// SpecOf returns a release's manifest, for a group whose spec the
	// engine does not give (nil: such a group is refused).
	SpecOf func(ctx context.Context, release string) (*config.Service, error)
	// ProxyImage is Runway's image, which the in-cluster proxy runs
	// (traffic "runway"): when set, the first routes pushed into a
	// namespace create its proxy (ensureProxy, exposed by a LoadBalancer
	// Service); "" leaves the proxy to the operator.
	ProxyImage string
	// Domain is the domain of ref's project, which the proxy serves hosts
	// under (nil or "": localhost).
	Domain func(ref target.ServiceRef) string
	Logger *slog.Logger
	// Now is the clock statistics windows end at (nil: time.Now).
	Now func() time.Time
	// Poll is how often the driver polls the cluster while it waits (a
	// group's pods gone, a Job deleted): 100 ms when zero.
	Poll time.Duration
}

// Driver implements target.Target on a Kubernetes cluster.
type Driver struct {
	opts  Options
	log   *slog.Logger
	tasks target.TaskLocks

	proxiesMu sync.Mutex
	proxies   map[proxyKey]bool // namespaces whose proxy this driver ensured
}

// proxyKey is a namespace of one cluster: two environments may name the
// same namespace in different clusters. Clients are cached per cluster, so
// the client's identity is the cluster's.
type proxyKey struct {
	c  kubernetes.Interface
	ns string
}

// client is the client of ref's cluster.
func (d *Driver) client(ref target.ServiceRef) (kubernetes.Interface, error) {
	if d.opts.ClientFor != nil {
		return d.opts.ClientFor(ref)
	}
	return d.opts.Client, nil
}

var _ target.Target = (*Driver)(nil)
var _ target.InstanceReporter = (*Driver)(nil)

// New returns the driver.
func New(opts Options) (*Driver, error) {
	if opts.Client == nil && opts.ClientFor == nil {
		return nil, errors.New("kubernetes: no client")
	}
	switch opts.Traffic {
	case "":
		opts.Traffic = config.TrafficRunway
	case config.TrafficRunway, config.TrafficService:
	default:
		return nil, fmt.Errorf("kubernetes: traffic %q: want %q or %q", opts.Traffic, config.TrafficRunway, config.TrafficService)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Poll <= 0 {
		opts.Poll = 100 * time.Millisecond
	}
	return &Driver{opts: opts, log: opts.Logger}, nil
}

// Capabilities of the mode: "runway" is the in-cluster proxy's (exact
// weights, preview, the per-group statistics its replicas publish, over
// StatsWindowMin to StatsWindowMax); "service" carries two weighted groups
// as a replica ratio, with no preview host and no statistics (a Service
// counts nothing: NoStats, so validation refuses canary releases, whose
// analysis reads them).
func Capabilities(traffic string) target.Capabilities {
	c := target.Capabilities{MaxWeight: 10000, MaxWeightedGroups: 8,
		StatsWindowMin: StatsWindowMin, StatsWindowMax: StatsWindowMax,
		Preview: true, TaskReattach: true, GroupNameMax: GroupNameMax}
	if traffic == config.TrafficService {
		c.MaxWeightedGroups = 2
		c.Preview = false
		c.ReplicaRatio = true
		c.NoStats = true
		c.StatsWindowMin, c.StatsWindowMax = 0, 0
	}
	return c
}

// Capabilities implements target.Target.
func (d *Driver) Capabilities() target.Capabilities { return Capabilities(d.opts.Traffic) }

// Namespace is ref's namespace.
func (d *Driver) Namespace(ref target.ServiceRef) string {
	if d.opts.Namespace != nil {
		if ns := d.opts.Namespace(ref); ns != "" {
			return ns
		}
	}
	env := &config.Environment{Name: ref.Environment, Target: "kubernetes"}
	return env.KubernetesNamespace(ref.Project)
}

// Image is the image a release runs: the manifest's, its template values
// (the version) expanded.
func Image(spec *config.Service) string {
	p := runenv.Process{Project: spec.Project, Service: spec.Name, Environment: spec.Environment, Version: spec.Version}
	return runenv.Expand(spec.Image, p.Values())
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// checkGroupName refuses a name the cluster would refuse or whose pods'
// names would pass 63 characters.
func checkGroupName(name string) error {
	switch {
	case len(name) > GroupNameMax:
		return fmt.Errorf("kubernetes: group name %q has %d characters: at most %d (a Deployment's pods add 17 to a 63-character host name)", name, len(name), GroupNameMax)
	case !dnsLabel.MatchString(name):
		return fmt.Errorf("kubernetes: group name %q is not a DNS label (lower-case letters, digits and '-')", name)
	}
	return nil
}

func serviceLabels(ref target.ServiceRef) map[string]string {
	return map[string]string{LabelManaged: ManagedBy, LabelProject: labelValue(ref.Project),
		LabelEnvironment: labelValue(ref.Environment), LabelService: labelValue(ref.Service)}
}

// labelValue keeps a value a label accepts (at most 63 characters).
func labelValue(s string) string {
	if len(s) > 63 {
		return s[:63]
	}
	return s
}

// serviceSelector selects everything of ref.
func serviceSelector(ref target.ServiceRef) string {
	return fmt.Sprintf("%s=%s,%s=%s,%s=%s", LabelProject, labelValue(ref.Project), LabelEnvironment,
		labelValue(ref.Environment), LabelService, labelValue(ref.Service))
}

func groupSelector(ref target.ServiceRef, group string) string {
	return serviceSelector(ref) + "," + LabelGroup + "=" + group
}

// hashName is a deterministic DNS-label name: prefix, then as much of s as
// fits, then a hash of s.
func hashName(prefix, s string, max int) string {
	sum := sha256.Sum256([]byte(s))
	h := hex.EncodeToString(sum[:])[:12]
	keep := strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			return r
		case 'A' <= r && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, s)
	room := max - len(prefix) - len(h) - 1
	if len(keep) > room {
		keep = keep[:room]
	}
	keep = strings.Trim(keep, "-")
	if keep == "" {
		return prefix + h
	}
	return prefix + keep + "-" + h
}

// secretName is the Secret of a release's pinned secrets.
func secretName(ref target.ServiceRef, release string) string {
	return hashName("runway-secrets-", ref.Service+"-"+release, 63)
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

// Validate checks the release's image and that its namespace exists.
func (d *Driver) Validate(ctx context.Context, ref target.ServiceRef, spec *config.Service) error {
	c, cerr := d.client(ref)
	if cerr != nil {
		return cerr
	}
	var problems []string
	if spec.Image == "" {
		problems = append(problems, "target kubernetes runs containers: the manifest needs an image under the environment's registry")
	} else {
		repo, _, _ := config.SplitImage(Image(spec))
		first, _, ok := strings.Cut(repo, "/")
		if !ok || !(strings.ContainsAny(first, ".:") || first == "localhost") {
			problems = append(problems, fmt.Sprintf("image %s names no registry: Kubernetes nodes pull every image", Image(spec)))
		}
	}
	ns := d.Namespace(ref)
	if _, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		switch {
		case isNotFound(err):
			problems = append(problems, fmt.Sprintf("namespace %s does not exist: create it (kubectl create namespace %s) and bind Runway's Role in it (runway kubernetes rbac --namespace %s | kubectl apply -f -)", ns, ns, ns))
		case apierrors.IsForbidden(err):
			// A namespaced Role cannot read namespaces: the objects'
			// calls report a missing one.
		default:
			problems = append(problems, fmt.Sprintf("namespace %s: %v", ns, err))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
