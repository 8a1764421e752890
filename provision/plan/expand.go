package plan

import (
	"context"

	"gopkg.in/yaml.v3"
)

// expansion counts the number of nodes a YAML tree stands for once every
// alias and merge key ("<<: *anchor") is expanded, without expanding it:
// the size of each anchored node is computed once and reused (memo), so
// the count costs one pass over the file however large the expansion. It
// stops at the first alias that takes the running total above limit and
// keeps the value at which it went over, so the error can point at it.
type expansion struct {
	ctx   context.Context
	limit int
	memo  map[*yaml.Node]int
	// over is the value at which the expansion exceeded limit.
	over *yaml.Node
	// steps counts visited nodes, to check ctx now and then.
	steps int
}

// size returns n's expanded size, saturated at limit+1.
func (e *expansion) size(n *yaml.Node, depth int) int {
	if n == nil || e.over != nil || e.ctx.Err() != nil {
		return 0
	}
	if s, ok := e.memo[n]; ok {
		return s
	}
	e.steps++
	if e.steps%4096 == 0 && e.ctx.Err() != nil {
		return 0
	}
	if depth > maxDepth {
		return 1 // the decoder reports the depth
	}
	s := 1
	if n.Kind == yaml.AliasNode {
		s = e.size(n.Alias, depth+1)
	} else {
		for _, c := range n.Content {
			s += e.size(c, depth+1)
			if s > e.limit {
				if e.over == nil {
					e.over = c // the deepest value that takes the total over
				}
				s = e.limit + 1
				break
			}
		}
	}
	if s > e.limit && e.over == nil {
		e.over = n
	}
	e.memo[n] = s
	return s
}

// checkExpansion reports an error naming the line of the alias or merge key
// at which the document expands to more than limit nodes. It returns false
// when the plan must not be decoded (too large, or ctx is done).
func checkExpansion(ctx context.Context, r *reporter, doc *yaml.Node, limit int) bool {
	e := &expansion{ctx: ctx, limit: limit, memo: map[*yaml.Node]int{}}
	s := e.size(doc, 0)
	if ctx.Err() != nil {
		return false
	}
	if e.over == nil && s <= limit {
		return true
	}
	at := e.over
	if at == nil {
		at = doc
	}
	r.pos["#expand"] = [2]int{at.Line, at.Column}
	r.errorf("yaml-size", "#expand", "remove the alias or merge-key chains (<<: *anchor) that multiply the plan", "aliases/merge keys expand to more than %d nodes", limit)
	return false
}
