// Command etcd is upstream etcd's server main, built inside this module so
// that it uses the etcd version k8s.io/kubernetes already requires.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
