package plan

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// decoder fills Go values from a yaml.Node tree the way yaml.v3 would with
// KnownFields(true), but it keeps going after a problem so every problem is
// reported at once, and it records the position of every field path so later
// checks can point at the exact line and column.
type decoder struct {
	r     *reporter
	depth int
	// budget bounds the number of nodes visited, so aliases that expand
	// exponentially ("billion laughs") cannot exhaust CPU or memory.
	budget int
	// ctx stops decoding when done (checked every few thousand values).
	ctx context.Context
}

// maxNodes is the decode budget: a 5,000-node plan visits about 100,000.
const maxNodes = 1_000_000

// maxDepth bounds recursion through aliases and nesting (fuzzed input).
const maxDepth = 64

// fieldHint returns a fix suggestion for unknown keys that people get wrong
// in predictable ways, or "".
func fieldHint(key string) string {
	switch key {
	case "password", "pass", "bmc_password":
		return "secrets never live in the plan: write password_secret: NAME and put NAME's value in the secrets file (or RACKLIFT_SECRET_NAME)"
	case "root_password", "rootpw":
		return "secrets never live in the plan: write root_password_secret: NAME and put the crypt hash in the secrets file"
	case "role":
		return "the key is roles: and takes a list, e.g. roles: [controller]"
	case "ip", "ipaddr":
		return "the key is address:"
	case "vlan_id", "vlanid":
		return "the key is vlan:"
	case "osd":
		return "the key is osds: (a list of disks)"
	}
	return ""
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n == nil {
		return
	}
	d.budget--
	if d.budget%4096 == 0 && d.ctx != nil && d.ctx.Err() != nil {
		d.budget = -2 // stop; LoadContext reports ctx's cause
	}
	if d.budget < 0 {
		if d.budget == -1 {
			d.r.errorf("yaml-size", path, "remove alias chains that expand to huge documents", "the plan expands to more than %d values", maxNodes)
		}
		return
	}
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > maxDepth {
		d.r.errorf("yaml-depth", path, "flatten the structure or remove alias loops", "nesting deeper than %d levels", maxDepth)
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) > 0 {
			d.decode(n.Content[0], v, path)
		}
		return
	case yaml.AliasNode:
		d.decode(n.Alias, v, path)
		return
	}
	if _, ok := d.r.pos[path]; !ok {
		d.r.pos[path] = [2]int{n.Line, n.Column}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // leave the zero value
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.r.errorf("yaml-type", path, "write a single value, quoted if it contains ': ' or '#'", "want a text value, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64, reflect.Int32:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			d.r.errorf("yaml-type", path, "write a whole number without quotes", "want a whole number, got %s", describe(n))
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || v.OverflowInt(i) {
			d.r.errorf("yaml-type", path, "", "number %q is out of range", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.r.errorf("yaml-type", path, "write true or false", "want true or false, got %s", describe(n))
			return
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	default:
		d.r.errorf("yaml-type", path, "", "internal: cannot decode into %s", v.Type())
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.r.errorf("yaml-type", path, "write key: value pairs on the lines below, indented", "want a mapping, got %s", describe(n))
		return
	}
	fields := structFields(v.Type())
	seen := map[string]bool{}
	for _, kv := range mergedPairs(n, 0) {
		k, val := kv[0], kv[1]
		if k.Kind != yaml.ScalarNode {
			d.r.pos[path+".?"] = [2]int{k.Line, k.Column}
			d.r.errorf("yaml-key", path+".?", "", "keys must be plain words")
			continue
		}
		fp := join(path, k.Value)
		if seen[k.Value] {
			d.r.pos[fp+"#dup"] = [2]int{k.Line, k.Column}
			d.r.errorf("yaml-duplicate", fp+"#dup", "remove one of the two entries", "%q is set twice", k.Value)
			continue
		}
		seen[k.Value] = true
		idx, ok := fields[k.Value]
		if !ok {
			d.r.pos[fp] = [2]int{k.Line, k.Column}
			hint := fieldHint(k.Value)
			if hint == "" {
				if s := closest(k.Value, keys(fields)); s != "" {
					hint = fmt.Sprintf("did you mean %q?", s)
				} else {
					hint = "known fields here: " + strings.Join(keys(fields), ", ")
				}
			}
			d.r.errorf("unknown-field", fp, hint, "unknown field %q", k.Value)
			continue
		}
		d.r.pos[fp] = [2]int{val.Line, val.Column}
		d.decode(val, v.Field(idx), fp)
	}
}

// mergedPairs returns the key/value pairs of a mapping with YAML merge keys
// ("<<: *anchor") expanded; explicit keys win over merged ones.
func mergedPairs(n *yaml.Node, depth int) [][2]*yaml.Node {
	var own, merged [][2]*yaml.Node
	if depth > maxDepth {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Tag == "!!merge" {
			for _, m := range mergeSources(v) {
				merged = append(merged, mergedPairs(m, depth+1)...)
			}
			continue
		}
		own = append(own, [2]*yaml.Node{k, v})
	}
	if len(merged) == 0 {
		return own
	}
	have := map[string]bool{}
	for _, kv := range own {
		have[kv[0].Value] = true
	}
	out := own
	for _, kv := range merged {
		if !have[kv[0].Value] {
			have[kv[0].Value] = true
			out = append(out, kv)
		}
	}
	return out
}

func mergeSources(v *yaml.Node) []*yaml.Node {
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{v}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, c := range v.Content {
			if c.Kind == yaml.AliasNode {
				c = c.Alias
			}
			if c.Kind == yaml.MappingNode {
				out = append(out, c)
			}
		}
		return out
	}
	return nil
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.r.errorf("yaml-type", path, "write a list: one '- item' per line, or [a, b]", "want a list, got %s", describe(n))
		return
	}
	if len(n.Content) > 1_000_000 {
		d.r.errorf("yaml-size", path, "", "list too long")
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.r.errorf("yaml-type", path, "write key: value pairs on the lines below, indented", "want a mapping, got %s", describe(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.r.errorf("yaml-type", path, "", "internal: map key %s", v.Type().Key())
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for _, kv := range mergedPairs(n, 0) {
		k, val := kv[0], kv[1]
		if k.Kind != yaml.ScalarNode {
			d.r.errorf("yaml-key", path, "", "keys must be plain words")
			continue
		}
		fp := mapKeyPath(path, k.Value)
		if v.MapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key())).IsValid() {
			d.r.pos[fp+"#dup"] = [2]int{k.Line, k.Column}
			d.r.errorf("yaml-duplicate", fp+"#dup", "remove one of the two entries", "%q is set twice", k.Value)
			continue
		}
		d.r.pos[fp] = [2]int{val.Line, val.Column}
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, e, fp)
		v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
	}
}

// mapKeyPath writes map entries as path.key, or path["key"] when the key has
// characters that would confuse a reader of the path.
func mapKeyPath(path, key string) string {
	if key != "" && !strings.ContainsAny(key, ".[]\" ") {
		return join(path, key)
	}
	return fmt.Sprintf("%s[%q]", path, key)
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// structFields maps yaml tag names to field indexes.
func structFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = i
	}
	return out
}

func keys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a value"
	}
}

func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return strconv.Quote(v)
	}
	return kindName(n)
}

// closest returns the candidate within edit distance 2 of s, if any.
func closest(s string, cands []string) string {
	best, bestD := "", 3
	for _, c := range cands {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
