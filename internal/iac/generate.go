package iac

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/naming"
	"github.com/runwayhq/runway/internal/netplan"
)

// Versions written into every root. The constraint pins the provider's major
// version; `tofu init` records the exact version in .terraform.lock.hcl,
// which belongs in the repository next to the generated code.
const (
	RequiredVersion    = ">= 1.10.0" // S3 state locking with use_lockfile
	AWSProviderSource  = "hashicorp/aws"
	AWSProviderVersion = ">= 5.100, < 7.0"
)

//go:embed modules
var modulesFS embed.FS

// safeName is the config's rule for environment and service names; names
// become HCL identifiers (provider aliases, module names), so Generate
// checks it again rather than trust its caller.
var safeName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// Input is what Generate needs: the project, its address plan and, for each
// aws environment, its services resolved for that environment.
type Input struct {
	Project  *config.Project
	Plan     *netplan.Plan
	Services map[string][]*config.Service // by environment name
	// Env limits generation to one environment's roots (plus bootstrap and
	// modules); empty means every aws environment.
	Env string
}

// Tree is generated files by slash-separated path relative to the output
// directory (infra/), without their checksum headers.
type Tree map[string][]byte

// Paths returns the tree's paths in sorted order.
func (t Tree) Paths() []string { return sortedKeys(t) }

// Root is a directory that OpenTofu runs in, with the roots it reads state from.
type Root struct {
	Dir       string   // relative to the output directory
	DependsOn []string // roots whose outputs it reads
}

// AWSEnvironments returns the project's environments with target aws, in
// declaration order.
func AWSEnvironments(p *config.Project) []*config.Environment {
	var out []*config.Environment
	for _, e := range p.Environments {
		if e != nil && e.Target == "aws" {
			out = append(out, e)
		}
	}
	return out
}

// Roots lists the roots of the project for env ("" for all) in dependency
// order: bootstrap, then per environment-region network, platform and
// services.
func Roots(p *config.Project, services map[string][]*config.Service, env string) []Root {
	roots := []Root{{Dir: "bootstrap"}}
	for _, e := range AWSEnvironments(p) {
		if env != "" && e.Name != env {
			continue
		}
		base := e.Name + "/" + e.Region
		roots = append(roots,
			Root{Dir: base + "/network", DependsOn: []string{"bootstrap"}},
			Root{Dir: base + "/platform", DependsOn: []string{"bootstrap", base + "/network"}})
		for _, s := range sortedServices(services[e.Name]) {
			roots = append(roots, Root{Dir: base + "/services/" + s.Name, DependsOn: []string{"bootstrap", base + "/network", base + "/platform"}})
		}
	}
	return roots
}

func sortedServices(in []*config.Service) []*config.Service {
	out := append([]*config.Service(nil), in...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// StateBucket is the default name of the state bucket: project and domain,
// since bucket names are global.
func StateBucket(p *config.Project) string {
	name := p.Name
	if p.Domain != "" {
		name += "-" + strings.ReplaceAll(strings.Trim(p.Domain, "."), ".", "-")
	}
	return strings.ToLower(name) + "-tfstate"
}

// HomeRegion is where the state bucket and the bootstrap root live: the
// region of the first aws environment.
func HomeRegion(p *config.Project) string {
	for _, e := range AWSEnvironments(p) {
		if e.Region != "" {
			return e.Region
		}
	}
	return "us-east-1"
}

// Generate renders the tree. It is pure: the same input gives the same bytes.
func Generate(in Input) (Tree, error) {
	p := in.Project
	envs := AWSEnvironments(p)
	if len(envs) == 0 {
		return nil, fmt.Errorf("no environment of %s has target = \"aws\"; nothing to generate", p.File)
	}
	if p.Domain == "" {
		return nil, fmt.Errorf("project %q has no domain: aws environments need one for their DNS zones and certificates (project %q { domain = \"example.com\" })", p.Name, p.Name)
	}
	if in.Env != "" {
		found := false
		for _, e := range envs {
			found = found || e.Name == in.Env
		}
		if !found {
			return nil, fmt.Errorf("environment %q is not an aws environment of %s", in.Env, p.Name)
		}
	}
	for _, e := range envs {
		if !safeName.MatchString(e.Name) {
			return nil, fmt.Errorf("environment name %q: want a lower-case letter, then letters, digits or dashes", e.Name)
		}
	}
	for env, services := range in.Services {
		for _, s := range services {
			if !safeName.MatchString(s.Name) {
				return nil, fmt.Errorf("service name %q (environment %s): want a lower-case letter, then letters, digits or dashes", s.Name, env)
			}
		}
	}
	g := &gen{in: in, tree: Tree{}, bucket: StateBucket(p), home: HomeRegion(p)}
	if err := g.modules(); err != nil {
		return nil, err
	}
	g.bootstrap(envs)
	for _, e := range envs {
		if in.Env != "" && e.Name != in.Env {
			continue
		}
		nw := g.network(e)
		if nw == nil {
			return nil, fmt.Errorf("environment %s (%s) has no network in the address plan", e.Name, e.Region)
		}
		if err := g.networkRoot(e, nw); err != nil {
			return nil, err
		}
		g.platformRoot(e)
		if err := g.serviceRoots(e); err != nil {
			return nil, err
		}
	}
	g.index(envs)
	return g.tree, nil
}

type gen struct {
	in     Input
	tree   Tree
	bucket string
	home   string
}

func (g *gen) network(e *config.Environment) *netplan.Network {
	if g.in.Plan == nil {
		return nil
	}
	for _, n := range g.in.Plan.Networks {
		if n.Environment == e.Name && n.Region == e.Region {
			return n
		}
	}
	return nil
}

// modules copies the shared modules, formatted, as *.runway.tf.
func (g *gen) modules() error {
	return fs.WalkDir(modulesFS, "modules", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, err := modulesFS.ReadFile(p)
		if err != nil {
			return err
		}
		g.tree[strings.TrimSuffix(p, ".tf")+".runway.tf"] = hclwrite.Format(src)
		return nil
	})
}

func (g *gen) put(file string, f *hclwrite.File) {
	g.tree[file] = hclwrite.Format(f.Bytes())
}

// versions writes the terraform block: versions, pinned provider, backend.
func (g *gen) versions(root string) {
	f := hclwrite.NewEmptyFile()
	tb := f.Body().AppendNewBlock("terraform", nil).Body()
	setString(tb, "required_version", RequiredVersion)
	tb.AppendNewline()
	rp := tb.AppendNewBlock("required_providers", nil).Body()
	rp.SetAttributeValue("aws", cty.ObjectVal(map[string]cty.Value{
		"source":  cty.StringVal(AWSProviderSource),
		"version": cty.StringVal(AWSProviderVersion),
	}))
	tb.AppendNewline()
	bb := tb.AppendNewBlock("backend", []string{"s3"}).Body()
	setString(bb, "bucket", g.bucket)
	setString(bb, "key", stateKey(root))
	setString(bb, "region", g.home)
	bb.SetAttributeValue("encrypt", cty.True)
	bb.SetAttributeValue("use_lockfile", cty.True)
	g.put(root+"/versions.runway.tf", f)
}

func stateKey(root string) string { return root + "/terraform.tfstate" }

// remoteState appends a terraform_remote_state data source reading root.
func (g *gen) remoteState(b *hclwrite.Body, name, root string) {
	db := b.AppendNewBlock("data", []string{"terraform_remote_state", name}).Body()
	setString(db, "backend", "s3")
	db.SetAttributeValue("config", cty.ObjectVal(map[string]cty.Value{
		"bucket": cty.StringVal(g.bucket),
		"key":    cty.StringVal(stateKey(root)),
		"region": cty.StringVal(g.home),
	}))
	b.AppendNewline()
}

func (g *gen) defaultTags(pb *hclwrite.Body, env string) {
	pb.AppendNewline()
	tags := map[string]string{"ManagedBy": "runway", "Project": g.in.Project.Name}
	if env != "" {
		tags["Environment"] = env
	}
	pb.AppendNewBlock("default_tags", nil).Body().SetAttributeValue("tags", stringMap(tags))
}

// envProvider writes providers.runway.tf of an environment root: the
// environment's account through the organization's access role.
func (g *gen) envProvider(root string, e *config.Environment, dns bool) {
	f := hclwrite.NewEmptyFile()
	b := f.Body()
	pb := b.AppendNewBlock("provider", []string{"aws"}).Body()
	setExpr(pb, "region", "var.region")
	pb.AppendNewline()
	ab := pb.AppendNewBlock("assume_role", nil).Body()
	setExpr(ab, "role_arn", `"arn:aws:iam::${local.account_id}:role/${var.account_access_role}"`)
	g.defaultTags(pb, e.Name)
	if dns {
		b.AppendNewline()
		b.AppendUnstructuredTokens(comment("The root domain's zone, in the management account."))
		db := b.AppendNewBlock("provider", []string{"aws"}).Body()
		setString(db, "alias", "dns")
		setExpr(db, "region", "var.region")
		g.defaultTags(db, e.Name)
	}
	g.put(root+"/providers.runway.tf", f)
}

func comment(s string) hclwrite.Tokens {
	var toks hclwrite.Tokens
	for _, line := range strings.Split(s, "\n") {
		toks = append(toks, &hclwrite.Token{Type: hclsyntax.TokenComment, Bytes: []byte("# " + line + "\n")})
	}
	return toks
}

// envVariables writes the variables every environment root has.
func envVariables(b *hclwrite.Body, e *config.Environment) {
	variable(b, "region", "string", "AWS region of this environment.", ptr(cty.StringVal(e.Region)))
	b.AppendNewline()
	variable(b, "account_access_role", "string", "Role assumed in the environment's account (created by AWS Organizations with the account).", ptr(cty.StringVal("OrganizationAccountAccessRole")))
}

func accountLocal(b *hclwrite.Body, env string) {
	lb := b.AppendNewBlock("locals", nil).Body()
	setExpr(lb, "account_id", fmt.Sprintf("data.terraform_remote_state.bootstrap.outputs.account_ids[%q]", env))
	b.AppendNewline()
}

func (g *gen) bootstrap(envs []*config.Environment) {
	p := g.in.Project
	root := "bootstrap"
	g.versions(root)

	// providers: the management account, and each environment account for
	// the CI roles that live there.
	f := hclwrite.NewEmptyFile()
	b := f.Body()
	pb := b.AppendNewBlock("provider", []string{"aws"}).Body()
	setExpr(pb, "region", "var.region")
	g.defaultTags(pb, "")
	for _, e := range envs {
		b.AppendNewline()
		eb := b.AppendNewBlock("provider", []string{"aws"}).Body()
		setString(eb, "alias", e.Name)
		setExpr(eb, "region", "var.region")
		eb.AppendNewline()
		ab := eb.AppendNewBlock("assume_role", nil).Body()
		setExpr(ab, "role_arn", fmt.Sprintf(`"arn:aws:iam::${module.accounts.account_ids[%q]}:role/${var.account_access_role}"`, e.Name))
		g.defaultTags(eb, e.Name)
	}
	g.put(root+"/providers.runway.tf", f)

	f = hclwrite.NewEmptyFile()
	b = f.Body()
	mb := b.AppendNewBlock("module", []string{"accounts"}).Body()
	setString(mb, "source", "../modules/accounts")
	mb.AppendNewline()
	setString(mb, "unit_name", p.Name+"-environments")
	setExpr(mb, "accounts", "{ for env, email in var.account_emails : env => { email = email } }")
	b.AppendNewline()
	mb = b.AppendNewBlock("module", []string{"identity"}).Body()
	setString(mb, "source", "../modules/identity")
	mb.AppendNewline()
	setString(mb, "project", p.Name)
	setExpr(mb, "account_ids", "module.accounts.account_ids")
	b.AppendNewline()
	mb = b.AppendNewBlock("module", []string{"state_backend"}).Body()
	setString(mb, "source", "../modules/state_backend")
	mb.AppendNewline()
	setExpr(mb, "bucket_name", "var.state_bucket")
	for _, e := range envs {
		b.AppendNewline()
		mb = b.AppendNewBlock("module", []string{"ci_roles_" + ident(e.Name)}).Body()
		setString(mb, "source", "../modules/ci_roles")
		setExpr(mb, "providers", fmt.Sprintf("{ aws = aws.%s }", e.Name))
		mb.AppendNewline()
		setString(mb, "environment", e.Name)
		setExpr(mb, "github_repository", "var.github_repository")
	}
	g.put(root+"/main.runway.tf", f)

	f = hclwrite.NewEmptyFile()
	b = f.Body()
	variable(b, "region", "string", "AWS region of the management account's resources and the state bucket.", ptr(cty.StringVal(g.home)))
	b.AppendNewline()
	emails := map[string]string{}
	for _, e := range envs {
		emails[e.Name] = "aws+" + e.Name + "@" + p.Domain
	}
	variable(b, "account_emails", "map(string)", "Root e-mail address of each environment's account; each must be unique and reach a person.", ptr(stringMap(emails)))
	b.AppendNewline()
	variable(b, "account_access_role", "string", "Role AWS Organizations creates in each new account for the management account.", ptr(cty.StringVal("OrganizationAccountAccessRole")))
	b.AppendNewline()
	variable(b, "state_bucket", "string", "Bucket holding the state of every root; the backend blocks name it too.", ptr(cty.StringVal(g.bucket)))
	b.AppendNewline()
	variable(b, "github_repository", "string", "GitHub repository (owner/name) whose Actions may plan and apply; set it in terraform.tfvars.", nil)
	g.put(root+"/variables.runway.tf", f)

	f = hclwrite.NewEmptyFile()
	b = f.Body()
	output(b, "account_ids", "AWS account ID of each environment.", "module.accounts.account_ids")
	b.AppendNewline()
	output(b, "group_ids", "Identity Center group of each Runway role.", "module.identity.group_ids")
	b.AppendNewline()
	output(b, "state_bucket", "Bucket holding the state of every root.", "module.state_backend.bucket_name")
	var roles []string
	for _, e := range envs {
		roles = append(roles, fmt.Sprintf("%s = { plan = module.ci_roles_%s.plan_role_arn, apply = module.ci_roles_%s.apply_role_arn }", e.Name, ident(e.Name), ident(e.Name)))
	}
	b.AppendNewline()
	output(b, "ci_role_arns", "Roles GitHub Actions assumes in each environment, to plan and to apply.", "{\n"+strings.Join(roles, "\n")+"\n}")
	g.put(root+"/outputs.runway.tf", f)

	g.readme(root, fmt.Sprintf(`# bootstrap

Creates what every environment of %s stands on, in the AWS management account:

- an organizational unit with one account per environment (%s);
- IAM Identity Center permission sets and groups for Runway's roles
  (global_admin, read_only, <environment>_admin, <environment>_deployer) and
  their assignments to the accounts;
- the state bucket %s (versioned, encrypted, public access blocked; state is
  locked with a lock file in the bucket);
- in each environment account, a GitHub Actions OpenID Connect provider with a
  read-only plan role and an apply role.

Depends on: an AWS organization with IAM Identity Center enabled, and
`+"`github_repository`"+` set in terraform.tfvars (a file Runway never touches).

Every other root reads this root's outputs (account IDs).

The first apply is special, once:

1. The state bucket is created here, so it runs before the bucket exists:
   move versions.runway.tf aside (keep a copy), run `+"`tofu init`"+`.
2. The environment providers sign in to accounts this root creates: run
   `+"`tofu apply -target=module.accounts -target=module.state_backend`"+`,
   then `+"`tofu apply`"+`.
3. Put versions.runway.tf back and run `+"`tofu init -migrate-state`"+`.

From then on, `+"`runway infra plan|apply`"+` runs this root like any other.
`, g.in.Project.Name, envNames(envs), g.bucket))
}

func envNames(envs []*config.Environment) string {
	var s []string
	for _, e := range envs {
		s = append(s, e.Name)
	}
	return strings.Join(s, ", ")
}

// ident turns an environment name into an identifier suffix (dashes are
// valid in HCL identifiers, but underscores read better in module names).
func ident(s string) string { return strings.ReplaceAll(s, "-", "_") }

func netName(e *config.Environment) string { return e.Name + "-" + e.Region }

func (g *gen) networkRoot(e *config.Environment, nw *netplan.Network) error {
	root := e.Name + "/" + e.Region + "/network"
	g.versions(root)
	g.envProvider(root, e, false)

	zones := map[string]cty.Value{}
	var natTiers []string
	hasPublic := false
	for _, z := range nw.Zones {
		subs := map[string]string{}
		for _, s := range z.Subnets {
			// The spare tier stays address space only: no subnet until a
			// tier is given its name.
			if s.Tier == "spare" {
				continue
			}
			subs[s.Tier] = s.CIDR.String()
		}
		zones[z.Name] = stringMap(subs)
	}
	for _, t := range g.tiers() {
		switch t {
		case "public":
			hasPublic = true
		case "data", "spare":
		default:
			natTiers = append(natTiers, t)
		}
	}
	if !hasPublic {
		return fmt.Errorf("network.tiers of %s has no \"public\" tier: the load balancer and NAT gateways of aws environments live there", g.in.Project.File)
	}

	f := hclwrite.NewEmptyFile()
	b := f.Body()
	g.remoteState(b, "bootstrap", "bootstrap")
	accountLocal(b, e.Name)
	b.AppendUnstructuredTokens(comment(fmt.Sprintf("Addresses from runway.lock.hcl (runway netplan --env %s).", e.Name)))
	mb := b.AppendNewBlock("module", []string{"network"}).Body()
	setString(mb, "source", "../../../modules/network")
	mb.AppendNewline()
	setString(mb, "name", netName(e))
	setString(mb, "region", e.Region)
	setString(mb, "cidr", nw.CIDR.String())
	mb.SetAttributeValue("zones", cty.ObjectVal(zones))
	mb.SetAttributeValue("nat_tiers", stringList(natTiers))
	mb.SetAttributeValue("nat_per_zone", cty.BoolVal(e.Protected))
	g.put(root+"/main.runway.tf", f)

	f = hclwrite.NewEmptyFile()
	envVariables(f.Body(), e)
	g.put(root+"/variables.runway.tf", f)

	f = hclwrite.NewEmptyFile()
	b = f.Body()
	output(b, "vpc_id", "ID of the VPC.", "module.network.vpc_id")
	b.AppendNewline()
	output(b, "vpc_cidr", "Address range of the VPC.", "module.network.vpc_cidr")
	b.AppendNewline()
	output(b, "subnet_ids", "Subnet IDs by tier, one per zone.", "module.network.subnet_ids")
	b.AppendNewline()
	output(b, "logs_kms_key_arn", "KMS key encrypting the environment's log groups.", "module.network.logs_kms_key_arn")
	g.put(root+"/outputs.runway.tf", f)

	nat := "one NAT gateway for the network"
	if e.Protected {
		nat = "one NAT gateway per zone (protected environment)"
	}
	g.readme(root, fmt.Sprintf(`# %s network (%s)

Creates the VPC %s (%s) in the %s account, laid out from runway.lock.hcl:
subnets per zone and tier (%s), an internet gateway for public subnets,
%s for %s, isolated data subnets, a default security
group that allows nothing, VPC flow logs in a KMS-encrypted log group.

Depends on: bootstrap (the account). Read by: platform and services.
Change addresses with runway.hcl's network block and `+"`runway netplan`"+`, never here.
`, e.Name, e.Region, netName(e), nw.CIDR, e.Name, strings.Join(g.tiers(), ", "), nat, strings.Join(natTiers, ", ")))
	return nil
}

func (g *gen) tiers() []string {
	t := g.in.Project.Network.Tiers
	if len(t) == 0 {
		return netplan.DefaultTiers
	}
	return t
}

func (g *gen) platformRoot(e *config.Environment) {
	base := e.Name + "/" + e.Region
	root := base + "/platform"
	g.versions(root)
	g.envProvider(root, e, true)

	f := hclwrite.NewEmptyFile()
	b := f.Body()
	g.remoteState(b, "bootstrap", "bootstrap")
	g.remoteState(b, "network", base+"/network")
	accountLocal(b, e.Name)
	mb := b.AppendNewBlock("module", []string{"platform"}).Body()
	setString(mb, "source", "../../../modules/platform")
	setExpr(mb, "providers", "{\naws = aws\naws.dns = aws.dns\n}")
	mb.AppendNewline()
	setString(mb, "name", netName(e))
	setString(mb, "zone_name", naming.Environment(e.Name, g.in.Project.Domain))
	setString(mb, "parent_zone_name", strings.Trim(strings.ToLower(g.in.Project.Domain), "."))
	setExpr(mb, "vpc_id", "data.terraform_remote_state.network.outputs.vpc_id")
	setExpr(mb, "vpc_cidr", "data.terraform_remote_state.network.outputs.vpc_cidr")
	setExpr(mb, "public_subnet_ids", `data.terraform_remote_state.network.outputs.subnet_ids["public"]`)
	setExpr(mb, "logs_kms_key_arn", "data.terraform_remote_state.network.outputs.logs_kms_key_arn")
	mb.SetAttributeValue("protected", cty.BoolVal(e.Protected))
	g.put(root+"/main.runway.tf", f)

	f = hclwrite.NewEmptyFile()
	envVariables(f.Body(), e)
	g.put(root+"/variables.runway.tf", f)

	f = hclwrite.NewEmptyFile()
	b = f.Body()
	outs := [][2]string{
		{"zone_id", "Route 53 zone of the environment."},
		{"certificate_arn", "Certificate of the environment and its hosts."},
		{"cluster_name", "ECS cluster services run in."},
		{"load_balancer_dns_name", "DNS name of the load balancer."},
		{"load_balancer_zone_id", "Route 53 zone ID of the load balancer."},
		{"load_balancer_security_group_id", "Security group of the load balancer."},
		{"https_listener_arn", "HTTPS listener services add host rules to."},
	}
	for i, o := range outs {
		if i > 0 {
			b.AppendNewline()
		}
		output(b, o[0], o[1], "module.platform."+o[0])
	}
	g.put(root+"/outputs.runway.tf", f)

	zone := naming.Environment(e.Name, g.in.Project.Domain)
	g.readme(root, fmt.Sprintf(`# %s platform (%s)

Creates what the services of %s share: the Route 53 zone %s (delegated
from %s's zone in the management account), an ACM certificate for it and
*.%s validated by DNS, an ECS cluster on Fargate, an application load
balancer with an HTTPS listener and an HTTP listener that redirects to HTTPS,
and a KMS-encrypted log group.

Depends on: bootstrap (the account), network (VPC, public subnets, log key).
Read by: every root under services/.
`, e.Name, e.Region, e.Name, zone, g.in.Project.Domain, zone))
}

func (g *gen) serviceRoots(e *config.Environment) error {
	base := e.Name + "/" + e.Region
	services := sortedServices(g.in.Services[e.Name])
	for _, s := range services {
		root := base + "/services/" + s.Name
		g.versions(root)
		g.envProvider(root, e, false)

		hosts := []string{naming.Service(s.Name, e.Name, g.in.Project.Domain)}
		if s.Deploy.Strategy == "blue_green" && s.Deploy.BlueGreen.Preview {
			hosts = append(hosts, naming.Preview(s.Name, e.Name, g.in.Project.Domain))
		}
		hosts = append(hosts, s.Hosts...)

		f := hclwrite.NewEmptyFile()
		b := f.Body()
		g.remoteState(b, "bootstrap", "bootstrap")
		g.remoteState(b, "network", base+"/network")
		g.remoteState(b, "platform", base+"/platform")
		accountLocal(b, e.Name)
		mb := b.AppendNewBlock("module", []string{"service"}).Body()
		setString(mb, "source", "../../../../modules/service")
		mb.AppendNewline()
		setString(mb, "project", g.in.Project.Name)
		setString(mb, "environment", e.Name)
		setString(mb, "name", s.Name)
		mb.SetAttributeValue("port", cty.NumberIntVal(int64(orInt(s.Port, 8080))))
		mb.SetAttributeValue("hosts", stringList(hosts))
		// One container per secret key (secret_env may give a key another
		// variable name, or two names).
		var secrets []string
		for _, k := range s.SecretVars() {
			if !slices.Contains(secrets, k) {
				secrets = append(secrets, k)
			}
		}
		sort.Strings(secrets)
		mb.SetAttributeValue("secrets", stringList(secrets))
		mb.AppendNewline()
		setExpr(mb, "vpc_id", "data.terraform_remote_state.network.outputs.vpc_id")
		setExpr(mb, "vpc_cidr", "data.terraform_remote_state.network.outputs.vpc_cidr")
		setExpr(mb, "zone_id", "data.terraform_remote_state.platform.outputs.zone_id")
		setString(mb, "zone_name", naming.Environment(e.Name, g.in.Project.Domain))
		for _, o := range []string{"https_listener_arn", "load_balancer_dns_name", "load_balancer_zone_id", "load_balancer_security_group_id"} {
			setExpr(mb, o, "data.terraform_remote_state.platform.outputs."+o)
		}
		setExpr(mb, "logs_kms_key_arn", "data.terraform_remote_state.network.outputs.logs_kms_key_arn")
		g.put(root+"/main.runway.tf", f)

		f = hclwrite.NewEmptyFile()
		envVariables(f.Body(), e)
		g.put(root+"/variables.runway.tf", f)

		f = hclwrite.NewEmptyFile()
		b = f.Body()
		outs := [][2]string{
			{"repository_url", "Registry to push " + s.Name + "'s images to."},
			{"execution_role_arn", "Task execution role."},
			{"task_role_arn", "Role " + s.Name + "'s code runs as."},
			{"security_group_id", "Security group of " + s.Name + "'s tasks."},
			{"log_group_name", "Log group of " + s.Name + "."},
			{"secret_arns", "Secrets Manager ARN of each secret."},
		}
		for i, o := range outs {
			if i > 0 {
				b.AppendNewline()
			}
			output(b, o[0], o[1], "module.service."+o[0])
		}
		g.put(root+"/outputs.runway.tf", f)

		secretsLine := "no secrets"
		if len(secrets) > 0 {
			secretsLine = "Secrets Manager containers (names only; values are put with `runway secret put`) for " + strings.Join(secrets, ", ")
		}
		g.readme(root, fmt.Sprintf(`# %s in %s (%s)

Creates what %s needs before Runway deploys it: an ECR repository (scan on
push, old images expire), DNS records for %s in the environment's
zone, a security group open to the load balancer only, task execution and task
roles, %s, and a KMS-encrypted log group.

Runway's aws driver owns what is per release: a target group per release (its
deregistration delay is the release's drain_timeout), the rules on the HTTPS
listener that forward to them by weight, task definitions and ECS services.

Depends on: bootstrap, network, platform.
`, s.Name, e.Name, e.Region, s.Name, strings.Join(hosts, ", "), secretsLine))
	}
	return nil
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func (g *gen) readme(root, text string) {
	g.tree[path.Join(root, "README.md")] = []byte(text)
}

// index writes infra/README.md: the roots and the order to apply them in.
func (g *gen) index(envs []*config.Environment) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# Infrastructure of %s\n\n", g.in.Project.Name)
	sb.WriteString("OpenTofu/Terraform written by `runway infra generate` from runway.hcl, the\n")
	sb.WriteString("service manifests and runway.lock.hcl. Files named *.runway.tf and README.md\n")
	sb.WriteString("files with a Runway header are regenerated; any other file is yours and is\n")
	sb.WriteString("never touched. To take a generated file over, delete its header.\n\n")
	sb.WriteString("Apply roots in this order (`runway infra plan|apply --env ENV` does):\n\n")
	for _, r := range Roots(g.in.Project, g.in.Services, "") {
		fmt.Fprintf(&sb, "1. `%s`\n", r.Dir)
	}
	sb.WriteString("\nShared modules live in modules/; roots only call them.\n")
	g.tree["README.md"] = []byte(sb.String())
}
