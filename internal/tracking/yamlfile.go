package tracking

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// MLflow reads its meta files with PyYAML, which follows YAML 1.1: a plain
// scalar such as yes, on, 012, 3.10 or 12:30 is a bool, an octal, a float or
// a base-60 integer there. Every string written here is therefore quoted
// (single-quoted, as PyYAML itself quotes), and numbers and nulls are emitted
// as explicitly tagged scalars, so that both YAML 1.1 and 1.2 readers see
// exactly the types intended. Keys are sorted, as MLflow's write_yaml does.

func yStr(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.SingleQuotedStyle}
}

func yInt(v int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v, 10)}
}

func yNull() *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
}

// yOptInt is an integer, or null when p is nil.
func yOptInt(p *int64) *yaml.Node {
	if p == nil {
		return yNull()
	}
	return yInt(*p)
}

// yOptStr is a string, or null when s is empty.
func yOptStr(s string) *yaml.Node {
	if s == "" {
		return yNull()
	}
	return yStr(s)
}

func yList(items ...*yaml.Node) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: items}
	if len(items) == 0 {
		n.Style = yaml.FlowStyle // []
	}
	return n
}

func yStrList(items ...string) *yaml.Node {
	nodes := make([]*yaml.Node, len(items))
	for i, s := range items {
		nodes[i] = yStr(s)
	}
	return yList(nodes...)
}

// yMap is a mapping with its keys sorted. Keys are the fixed names of
// MLflow's files; see yUserMap for keys that come from data.
func yMap(m map[string]*yaml.Node) *yaml.Node { return yMapStyle(m, 0) }

// yUserMap is yMap with quoted keys, for keys such as alias names or
// metadata keys, which PyYAML could otherwise read as booleans or numbers.
func yUserMap(m map[string]*yaml.Node) *yaml.Node { return yMapStyle(m, yaml.SingleQuotedStyle) }

func yMapStyle(m map[string]*yaml.Node, keyStyle yaml.Style) *yaml.Node {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if len(keys) == 0 {
		n.Style = yaml.FlowStyle // {}
	}
	for _, k := range keys {
		key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k, Style: keyStyle}
		n.Content = append(n.Content, key, m[k])
	}
	return n
}

func yEncode(n *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// yamlDoc is a parsed meta file: a mapping, with typed accessors that say
// which file and key are wrong.
type yamlDoc struct {
	path string
	m    map[string]any
}

// parseYAMLMap parses a meta file that must be a non-empty mapping (an empty
// file reads as None in MLflow and makes it raise).
func parseYAMLMap(path string, data []byte) (yamlDoc, error) {
	var m map[string]any
	if len(bytes.TrimSpace(data)) == 0 {
		return yamlDoc{}, fmt.Errorf("%s: empty file", path)
	}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return yamlDoc{}, fmt.Errorf("%s: %w", path, err)
	}
	if m == nil {
		return yamlDoc{}, fmt.Errorf("%s: not a YAML mapping", path)
	}
	return yamlDoc{path: path, m: m}, nil
}

func (d yamlDoc) has(key string) bool {
	_, ok := d.m[key]
	return ok
}

// str reads a string key. Integers are accepted and converted, as MLflow
// does for legacy integer experiment ids. A missing or null key gives "".
func (d yamlDoc) str(key string) (string, error) {
	switch v := d.m[key].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	default:
		return "", fmt.Errorf("%s: %s is %T (%v), want a string", d.path, key, v, v)
	}
}

// int reads an integer key; ok is false when the key is missing or null.
func (d yamlDoc) int(key string) (v int64, ok bool, err error) {
	switch x := d.m[key].(type) {
	case nil:
		return 0, false, nil
	case int:
		return int64(x), true, nil
	case int64:
		return x, true, nil
	case uint64:
		if x > 1<<63-1 {
			return 0, false, fmt.Errorf("%s: %s = %d is out of range", d.path, key, x)
		}
		return int64(x), true, nil
	default:
		return 0, false, fmt.Errorf("%s: %s is %T (%v), want an integer", d.path, key, x, x)
	}
}

// requireInt reads an integer key that must be present.
func (d yamlDoc) requireInt(key string) (int64, error) {
	v, ok, err := d.int(key)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("%s: missing %s", d.path, key)
	}
	return v, nil
}
