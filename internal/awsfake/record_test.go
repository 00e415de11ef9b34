package awsfake

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/encoding/cbor"
)

const recordedDir = "testdata/recorded"

// recorder keeps the raw answer of every call, named by service and
// operation.
type recorder struct {
	next http.RoundTripper
	dir  string
	t    *testing.T
}

var accountID = regexp.MustCompile(`\b\d{12}\b`)

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := r.next.RoundTrip(req)
	if err != nil || resp.StatusCode != 200 {
		return resp, err
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(out))
	var name string
	switch {
	case req.Header.Get("X-Amz-Target") != "":
		name = strings.ReplaceAll(req.Header.Get("X-Amz-Target"), "_", "") + ".json"
	case strings.HasPrefix(req.URL.Path, "/service/"):
		name = "monitoring." + filepath.Base(req.URL.Path) + ".cbor"
	default:
		form, _ := parseForm(body)
		name = form.Get("Version") + "." + form.Get("Action") + ".xml"
	}
	if !bytes.Contains(out, []byte("SecretString")) {
		clean := accountID.ReplaceAll(out, []byte("123456789012"))
		if err := os.WriteFile(filepath.Join(r.dir, name), clean, 0o644); err != nil {
			r.t.Errorf("record %s: %v", name, err)
		}
	}
	return resp, nil
}

// TestRecord records answers of real AWS (docs/aws-fake.md); it skips
// unless RUNWAY_AWS_RECORD=1.
func TestRecord(t *testing.T) {
	if os.Getenv("RUNWAY_AWS_RECORD") != "1" {
		t.Skip("records answers of real AWS: set RUNWAY_AWS_RECORD=1, RUNWAY_AWS_OUTPUTS and RUNWAY_AWS_ENV, with credentials (docs/aws-fake.md)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var outs map[string]struct {
		Cluster     string `json:"cluster_name"`
		ListenerARN string `json:"https_listener_arn"`
		LogGroup    string `json:"log_group_name"`
		Region      string `json:"region"`
	}
	if err := readJSON(os.Getenv("RUNWAY_AWS_OUTPUTS"), &outs); err != nil {
		t.Fatal(err)
	}
	e, ok := outs[os.Getenv("RUNWAY_AWS_ENV")]
	if !ok {
		t.Fatalf("environment %q not in %s", os.Getenv("RUNWAY_AWS_ENV"), os.Getenv("RUNWAY_AWS_OUTPUTS"))
	}
	rec := &recorder{next: http.DefaultTransport, dir: recordedDir, t: t}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(e.Region), awsconfig.WithHTTPClient(&http.Client{Transport: rec}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
	ec := ecs.NewFromConfig(cfg)
	svcs, err := ec.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String(e.Cluster)})
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs.ServiceArns) > 0 {
		if _, err := ec.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(e.Cluster), Services: svcs.ServiceArns[:1]}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ec.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(e.Cluster)}); err != nil {
		t.Fatal(err)
	}
	lb := elb.NewFromConfig(cfg)
	tgs, err := lb.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tgs.TargetGroups) > 0 {
		if _, err := lb.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: tgs.TargetGroups[0].TargetGroupArn}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := lb.DescribeRules(ctx, &elb.DescribeRulesInput{ListenerArn: aws.String(e.ListenerARN)}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := cloudwatch.NewFromConfig(cfg).GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(now.Add(-time.Hour)), EndTime: aws.Time(now),
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("r"), MetricStat: &cwtypes.MetricStat{Period: aws.Int32(60), Stat: aws.String("Sum"),
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String("RequestCount")}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cloudwatchlogs.NewFromConfig(cfg).FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(e.LogGroup), Limit: aws.Int32(10)}); err != nil {
		t.Fatal(err)
	}
}

// TestRecordedResponses checks every answer recorded from real AWS against
// the models the fake's own answers are checked against.
func TestRecordedResponses(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(recordedDir, "*.*"))
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".md") {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m, op, raw, err := decodeRecorded(filepath.Base(f), data)
			if err != nil {
				t.Fatal(err)
			}
			var errs Violations
			m.Conform(op.Output, raw, "response", &errs)
			if len(errs) > 0 {
				t.Errorf("AWS answered what the model refuses (the fake's shapes may be wrong): %s", errs)
			}
		})
	}
	if n == 0 {
		t.Log("no responses recorded from real AWS yet (docs/aws-fake.md says how)")
	}
}

func decodeRecorded(name string, data []byte) (*Model, *Operation, any, error) {
	parts := strings.Split(name, ".")
	if len(parts) != 3 {
		return nil, nil, nil, fmt.Errorf("%s: want <service>.<operation>.<json|cbor|xml>", name)
	}
	var service string
	switch parts[0] {
	case "AmazonEC2ContainerServiceV20141113":
		service = "ecs"
	case "Logs20140328":
		service = "logs"
	case "monitoring":
		service = "monitoring"
	case "2015-12-01":
		service = "elasticloadbalancingv2"
	case "2011-06-15":
		service = "sts"
	default:
		return nil, nil, nil, fmt.Errorf("%s: unknown service %s", name, parts[0])
	}
	m, err := LoadModel(service)
	if err != nil {
		return nil, nil, nil, err
	}
	op := m.Operations[parts[1]]
	if op == nil {
		return nil, nil, nil, fmt.Errorf("%s: unknown operation", name)
	}
	var raw any
	switch parts[2] {
	case "json":
		raw, err = decodeJSON(data)
	case "cbor":
		var v cbor.Value
		if v, err = cbor.Decode(data); err == nil {
			raw, err = fromCBOR(v)
		}
	case "xml":
		raw, err = decodeXMLResult(data, op)
	}
	return m, op, raw, err
}

// decodeXMLResult reads an awsQuery answer's result element as generic
// values of the operation's output shape.
func decodeXMLResult(data []byte, op *Operation) (any, error) {
	var root xmlNode
	if err := xml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	for _, c := range root.Nodes {
		if c.XMLName.Local == op.ResultWrapper || c.XMLName.Local == op.Name+"Result" {
			return xmlValue(&c, op.Output), nil
		}
	}
	return map[string]any{}, nil
}

type xmlNode struct {
	XMLName xml.Name
	Nodes   []xmlNode `xml:",any"`
	Text    string    `xml:",chardata"`
}

func xmlValue(n *xmlNode, s *Shape) any {
	switch s.Type {
	case "structure":
		out := map[string]any{}
		for i := range n.Nodes {
			c := &n.Nodes[i]
			name := c.XMLName.Local
			for k, ms := range s.Members {
				if ms.LocationName == name {
					name = k
				}
			}
			ms := s.Members[name]
			if ms == nil {
				out[name] = c.Text // unknown: Conform reports it
				continue
			}
			out[name] = xmlValue(c, ms)
		}
		return out
	case "list":
		out := []any{}
		for i := range n.Nodes {
			out = append(out, xmlValue(&n.Nodes[i], s.Member))
		}
		return out
	case "map":
		out := map[string]any{}
		for _, e := range n.Nodes {
			var k string
			var v *xmlNode
			for i := range e.Nodes {
				switch e.Nodes[i].XMLName.Local {
				case "key":
					k = e.Nodes[i].Text
				case "value":
					v = &e.Nodes[i]
				}
			}
			if v != nil {
				out[k] = xmlValue(v, s.Value)
			}
		}
		return out
	}
	return strings.TrimSpace(n.Text)
}

func parseForm(body []byte) (url.Values, error) { return url.ParseQuery(string(body)) }

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// TestRecorderOnTheFake: the recorder and the decoders of recorded answers
// work, shown on the fake's own answers of every protocol.
func TestRecorderOnTheFake(t *testing.T) {
	f, err := New(Options{TimeScale: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	static := f.Bootstrap("staging")
	dir := t.TempDir()
	rec := &recorder{next: http.DefaultTransport, dir: dir, t: t}
	cfg := aws.Config{Region: f.Region(), BaseEndpoint: aws.String(f.URL()), HTTPClient: &http.Client{Transport: rec},
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFAKE", "fake", "")}
	ctx := context.Background()
	if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ecs.NewFromConfig(cfg).ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(static.ClusterName)}); err != nil {
		t.Fatal(err)
	}
	if _, err := elb.NewFromConfig(cfg).DescribeRules(ctx, &elb.DescribeRulesInput{ListenerArn: aws.String(static.ListenerARN)}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := cloudwatch.NewFromConfig(cfg).GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(now.Add(-time.Hour)), EndTime: aws.Time(now),
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("r"), MetricStat: &cwtypes.MetricStat{Period: aws.Int32(60), Stat: aws.String("Sum"),
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String("RequestCount")}}}}}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 4 {
		t.Fatalf("recorded %v, want 4 answers", files)
	}
	for _, file := range files {
		data, _ := os.ReadFile(file)
		m, op, raw, err := decodeRecorded(filepath.Base(file), data)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var errs Violations
		m.Conform(op.Output, raw, "response", &errs)
		if len(errs) > 0 {
			t.Errorf("%s: %s", file, errs)
		}
	}
}
