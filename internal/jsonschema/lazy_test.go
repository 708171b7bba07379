package jsonschema

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// compiledAtInit is whether any meta-schema was compiled when the package
// was initialised (TestMain runs after every init, before any test).
var compiledAtInit bool

func TestMain(m *testing.M) {
	compiledAtInit = Draft4.sch != nil || Draft7.sch != nil || Draft2020.sch != nil || Draft2019.vocabSch != nil
	os.Exit(m.Run())
}

// TestMetaSchemasLazy checks vouch's change to this package: the drafts'
// meta-schemas are compiled on first use, not in init; and that schemas of
// every draft compiled from several goroutines at once are checked against
// their meta-schema (with -race and -run TestMetaSchemasLazy, this is the
// meta-schemas' first, concurrent, use).
func TestMetaSchemasLazy(t *testing.T) {
	if compiledAtInit {
		t.Fatal("meta-schemas compiled at init")
	}
	drafts := []*Draft{Draft4, Draft6, Draft7, Draft2019, Draft2020}
	var wg sync.WaitGroup
	errs := make([]error, 2*len(drafts))
	for i, d := range drafts {
		wg.Add(2)
		go func() {
			defer wg.Done()
			// Invalid against every draft's meta-schema: "type" is a number.
			c := NewCompiler()
			c.DefaultDraft(d)
			if err := c.AddResource("mem://bad.json", map[string]any{"type": 5}); err == nil {
				_, err = c.Compile("mem://bad.json")
				if err == nil {
					errs[2*i] = fmt.Errorf("draft %d: a schema with \"type\": 5 compiled", d.version)
				}
			} else if !strings.Contains(err.Error(), "type") {
				errs[2*i] = fmt.Errorf("draft %d: unexpected error %v", d.version, err)
			}
		}()
		go func() {
			defer wg.Done()
			c := NewCompiler()
			c.DefaultDraft(d)
			if err := c.AddResource("mem://good.json", map[string]any{"type": "object", "required": []any{"name"}}); err != nil {
				errs[2*i+1] = err
				return
			}
			sch, err := c.Compile("mem://good.json")
			if err != nil {
				errs[2*i+1] = err
				return
			}
			if err := sch.Validate(map[string]any{}); err == nil {
				errs[2*i+1] = fmt.Errorf("draft %d: {} valid against a schema requiring name", d.version)
			}
			if err := sch.Validate(map[string]any{"name": "x"}); err != nil {
				errs[2*i+1] = err
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, d := range drafts {
		if d.sch == nil {
			t.Errorf("draft %d: meta-schema not compiled after use", d.version)
		}
	}
}
