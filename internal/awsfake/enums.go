package awsfake

import (
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// The JS SDK's minified models keep members, required members and types but
// no enums or ranges. Enums come from the Go SDK (types.X("").Values()), by
// member name within a service: only members whose name means one enum
// everywhere in the service are listed. Ranges come from the AWS API
// reference pages named beside each; for strings they bound the length.

func values[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

var enums = map[string]map[string][]string{
	"ecs": {
		"launchType":              values(ecstypes.LaunchType("").Values()),
		"networkMode":             values(ecstypes.NetworkMode("").Values()),
		"assignPublicIp":          values(ecstypes.AssignPublicIp("").Values()),
		"requiresCompatibilities": values(ecstypes.Compatibility("").Values()),
		"compatibilities":         values(ecstypes.Compatibility("").Values()),
		"logDriver":               values(ecstypes.LogDriver("").Values()),
		"desiredStatus":           values(ecstypes.DesiredStatus("").Values()),
		"schedulingStrategy":      values(ecstypes.SchedulingStrategy("").Values()),
		"propagateTags":           values(ecstypes.PropagateTags("").Values()),
		"rolloutState":            values(ecstypes.DeploymentRolloutState("").Values()),
		"healthStatus":            values(ecstypes.HealthStatus("").Values()),
		"connectivity":            values(ecstypes.Connectivity("").Values()),
		"stopCode":                values(ecstypes.TaskStopCode("").Values()),
		"include":                 append(values(ecstypes.ServiceField("").Values()), values(ecstypes.TaskField("").Values())...),
	},
	"elasticloadbalancingv2": {
		"Protocol":            values(elbtypes.ProtocolEnum("").Values()),
		"HealthCheckProtocol": values(elbtypes.ProtocolEnum("").Values()),
		"TargetType":          values(elbtypes.TargetTypeEnum("").Values()),
		"Type":                values(elbtypes.ActionTypeEnum("").Values()),
		"State":               values(elbtypes.TargetHealthStateEnum("").Values()),
		"Reason":              values(elbtypes.TargetHealthReasonEnum("").Values()),
		"Include":             values(elbtypes.DescribeTargetHealthInputIncludeEnum("").Values()),
	},
	"monitoring": {
		"StatusCode": values(cwtypes.StatusCode("").Values()),
		"ScanBy":     values(cwtypes.ScanBy("").Values()),
		"Unit":       values(cwtypes.StandardUnit("").Values()),
	},
}

var ranges = map[string]map[string][2]float64{
	// https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetGroupTuple.html (Weight 0-999),
	// API_CreateRule.html (Priority 1-50000), API_CreateTargetGroup.html (Name up to 32
	// characters, health check interval 5-300, timeout 2-120, thresholds 2-10, port 1-65535),
	// API_DescribeTargetGroups.html (PageSize 1-400).
	"elasticloadbalancingv2": {
		"Weight":                     {0, 999},
		"Priority":                   {1, 50000},
		"Name":                       {1, 32},
		"HealthCheckIntervalSeconds": {5, 300},
		"HealthCheckTimeoutSeconds":  {2, 120},
		"HealthyThresholdCount":      {2, 10},
		"UnhealthyThresholdCount":    {2, 10},
		"Port":                       {1, 65535},
		"PageSize":                   {1, 400},
	},
	// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html (count 1-10,
	// startedBy up to 128 characters), API_CreateService.html (serviceName up to 255,
	// desiredCount >= 0), API_ListTasks.html (maxResults 1-100),
	// API_RegisterTaskDefinition.html (family up to 255).
	"ecs": {
		"count":         {1, 10},
		"startedBy":     {1, 128},
		"serviceName":   {1, 255},
		"desiredCount":  {0, 1 << 31},
		"maxResults":    {1, 100},
		"family":        {1, 255},
		"containerPort": {0, 65535},
	},
	// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricStat.html
	// (Period: 1, 5, 10, 20, 30, 60 or a multiple of 60), API_MetricDataQuery.html (Id 1-255).
	"monitoring": {
		"Period": {1, 1 << 31},
		"Id":     {1, 255},
	},
	// https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html
	// (ClientRequestToken 32-64, SecretString up to 65536, VersionStages 1-20 items of 1-256),
	// API_CreateSecret.html (Name 1-512), API_GetSecretValue.html (SecretId 1-2048, VersionId 32-64).
	"secretsmanager": {
		"ClientRequestToken": {32, 64},
		"SecretString":       {1, 65536},
		"Name":               {1, 512},
		"SecretId":           {1, 2048},
		"VersionId":          {32, 64},
		"VersionStage":       {1, 256},
	},
	// https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html
	// (limit 1-10000, logStreamNamePrefix 1-512).
	"logs": {
		"limit":               {1, 10000},
		"logStreamNamePrefix": {1, 512},
		"logGroupName":        {1, 512},
	},
}
