package awsfake

import (
	"net/url"
	"testing"

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
