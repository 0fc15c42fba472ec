//go:build tools

// Package kwoktool only records the binary this module builds: kwok
// (sigs.k8s.io/kwok/cmd/kwok), which simulates kubelets for the dev cluster's
// nodes, at the version go.mod pins.
package kwoktool

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
