//go:build tools

// Package helmtool only records the binary this module builds: the helm CLI
// (helm.sh/helm/v3/cmd/helm) at the version go.mod pins. The end-to-end tests
// use it to lint and render charts/workload-scheduler.
package helmtool

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
