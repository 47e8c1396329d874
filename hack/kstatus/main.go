// Command kstatus prints the verdict of kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status),
// the library Flux and kpt read health with, for each object it is given: a JSON array of
// Kubernetes objects on stdin, one JSON line {"status", "message"} or {"error"} per object on
// stdout, in order. The tests judge the operator's live objects with it (tests/support/kstatus.py).
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	var objs []json.RawMessage
	if err := json.NewDecoder(os.Stdin).Decode(&objs); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading a JSON array of objects from stdin:", err)
		os.Exit(2)
	}
	out := json.NewEncoder(os.Stdout)
	for _, o := range objs {
		line := map[string]string{}
		u := &unstructured.Unstructured{}
		// its own decoder: integers become int64, as kstatus's accessors expect
		err := u.UnmarshalJSON(o)
		var res *status.Result
		if err == nil {
			res, err = status.Compute(u)
		}
		if err != nil {
			line["error"] = err.Error()
		} else {
			line["status"] = res.Status.String()
			line["message"] = res.Message
		}
		if err := out.Encode(line); err != nil {
			fmt.Fprintln(os.Stderr, "kstatus: writing:", err)
			os.Exit(2)
		}
	}
}
