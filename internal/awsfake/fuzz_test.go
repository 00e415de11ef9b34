package awsfake

import (
	"net/url"
	"testing"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// FuzzDecode: whatever a client sends, the three protocol decoders and the
// model check answer with a value or refusals, never a panic.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"serviceName":"web","desiredCount":2,"loadBalancers":[{"targetGroupArn":"a","containerPort":8080}]}`))
	f.Add([]byte(`Action=ModifyRule&Version=2015-12-01&RuleArn=x&Actions.member.1.Type=forward&Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight=1000`))
	f.Add(cbor.Encode(cbor.Map{"StartTime": &cbor.Tag{ID: 1, Value: cbor.Float64(1)}, "MetricDataQueries": cbor.List{cbor.Map{"Id": cbor.String("r")}}}))
	ecs, err := LoadModel("ecs")
	if err != nil {
		f.Fatal(err)
	}
	elb, err := LoadModel("elasticloadbalancingv2")
	if err != nil {
		f.Fatal(err)
	}
	cw, err := LoadModel("monitoring")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var errs Violations
		if v, err := decodeJSON(body); err == nil {
			ecs.Conform(ecs.Operations["CreateService"].Input, v, "", &errs)
		}
		if form, err := url.ParseQuery(string(body)); err == nil {
			v, _ := decodeQuery(form, elb.Operations["ModifyRule"].Input)
			elb.Conform(elb.Operations["ModifyRule"].Input, v, "", &errs)
		}
		if c, err := cbor.Decode(body); err == nil {
			if v, err := fromCBOR(c); err == nil {
				cw.Conform(cw.Operations["GetMetricData"].Input, v, "", &errs)
			}
		}
	})
}

// FuzzResolveSecret: whatever valueFrom a task definition carries, a task's
// start reads a value or names the problem, never panics, and a reference
// to a version that exists reads exactly that version.
func FuzzResolveSecret(f *testing.F) {
	f.Add("arn:aws:secretsmanager:us-east-2:123456789012:secret:db-AbCdEf:::11111111-1111-4111-8111-111111111111")
	f.Add("arn:aws:secretsmanager:us-east-2:123456789012:secret:db-AbCdEf")
	f.Add("arn:aws:secretsmanager:us-east-2:123456789012:secret:db-AbCdEf:key:AWSCURRENT:")
	f.Add("arn:aws:ssm:us-east-2:123456789012:parameter/x")
	fk := &Fake{opt: Options{Region: "us-east-2", Account: "123456789012"}}
	s := newState(fk)
	sc := s.createSecret("db", time.Now())
	const id = "11111111-1111-4111-8111-111111111111"
	if _, err := s.putVersion(sc, id, "v1", nil, time.Now()); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, valueFrom string) {
		v, problem := s.resolveSecret(valueFrom)
		if problem == "" && v != "v1" {
			t.Fatalf("%q read %q", valueFrom, v)
		}
		if valueFrom == sc.arn+":::"+id && v != "v1" {
			t.Fatalf("the version's own reference: %q, %s", v, problem)
		}
	})
}
