package plan

import (
	"encoding/json"
	"reflect"
	"strings"
)

// Schema returns a JSON Schema (draft 2020-12) of the plan format, generated
// from the same struct tags the loader uses, so editors (VS Code YAML, vim
// with yaml-language-server) can complete and check plans.
func Schema() ([]byte, error) {
	s := schemaFor(reflect.TypeFor[Spec](), "", "")
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = "https://racklift.dev/schema/plan.json"
	s["title"] = "racklift cluster plan"
	return json.MarshalIndent(s, "", "  ")
}

func schemaFor(t reflect.Type, desc, enum string) map[string]any {
	out := map[string]any{}
	if desc != "" {
		out["description"] = desc
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaFor(t.Elem(), desc, enum)
	case reflect.Struct:
		out["type"] = "object"
		out["additionalProperties"] = false
		props := map[string]any{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			props[name] = schemaFor(f.Type, f.Tag.Get("desc"), f.Tag.Get("enum"))
		}
		out["properties"] = props
	case reflect.Slice:
		out["type"] = "array"
		out["items"] = schemaFor(t.Elem(), "", enum)
	case reflect.Map:
		out["type"] = "object"
		out["additionalProperties"] = schemaFor(t.Elem(), "", "")
	case reflect.String:
		out["type"] = "string"
		if enum != "" {
			out["enum"] = strings.Split(enum, "|")
		}
	case reflect.Int, reflect.Int32, reflect.Int64:
		out["type"] = "integer"
	case reflect.Bool:
		out["type"] = "boolean"
	}
	return out
}
