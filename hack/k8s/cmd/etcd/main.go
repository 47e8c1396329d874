// Command etcd is the upstream etcd server, built at the version Kubernetes pins.
// etcd's own main module carries replace directives, so `go install` of it fails;
// building its server entry point inside this module sidesteps that.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
