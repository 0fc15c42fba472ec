//go:build tools

// Package controlplane only records the binaries this module builds:
// kube-apiserver, kube-controller-manager, kube-scheduler and etcd, at the versions go.mod pins (Kubernetes 1.37).
package controlplane

import (
	_ "go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
)
