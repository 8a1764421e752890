package plan

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Selection says which nodes a command acts on: every node, the nodes
// with any of some roles, or nodes by name. Exactly one way is used. It is
// the one selection of racklift: `racklift install`, `racklift bmc`, the
// admin API and the orchestrator all resolve it with Plan.Select.
type Selection struct {
	All   bool
	Roles []Role
	Nodes []string
}

// ParseRoles turns "compute,storage" (what --role and the API take) into
// roles, checking each one.
func ParseRoles(s string) ([]Role, error) {
	var out []Role
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if !slices.Contains(AllRoles(), Role(r)) {
			return nil, fmt.Errorf("unknown role %q (roles: %s)", r, roleList())
		}
		if !slices.Contains(out, Role(r)) {
			out = append(out, Role(r))
		}
	}
	return out, nil
}

// Select resolves a selection: all nodes or those with a role in plan
// order, named nodes in the order given (each once). It fails naming
// unknown nodes, a role no node has, or a selection that is empty or uses
// more than one way.
func (p *Plan) Select(sel Selection) ([]*Node, error) {
	ways := 0
	for _, used := range []bool{sel.All, len(sel.Roles) > 0, len(sel.Nodes) > 0} {
		if used {
			ways++
		}
	}
	switch {
	case ways == 0:
		return nil, errors.New("select nodes: name them, or use --role ROLE[,ROLE...], or --all for every node")
	case ways > 1:
		return nil, errors.New("select nodes one way only: by name, by --role, or --all")
	case sel.All:
		return slices.Clone(p.Nodes), nil
	case len(sel.Roles) > 0:
		for _, r := range sel.Roles {
			if !slices.Contains(AllRoles(), r) {
				return nil, fmt.Errorf("unknown role %q (roles: %s)", r, roleList())
			}
		}
		var out []*Node
		for _, n := range p.Nodes {
			if slices.ContainsFunc(sel.Roles, n.Has) {
				out = append(out, n)
			}
		}
		if len(out) == 0 {
			var names []string
			for _, r := range sel.Roles {
				names = append(names, string(r))
			}
			return nil, fmt.Errorf("no node in the plan has role %s", strings.Join(names, " or "))
		}
		return out, nil
	}
	var out []*Node
	var unknown []string
	seen := map[string]bool{}
	for _, name := range sel.Nodes {
		if seen[name] {
			continue
		}
		seen[name] = true
		n, ok := p.NodeByName(name)
		if !ok {
			unknown = append(unknown, name)
			continue
		}
		out = append(out, n)
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("no node named %s in the plan", strings.Join(unknown, ", "))
	}
	return out, nil
}
