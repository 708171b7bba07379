package sbom_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/verifier/sbom"
)

// TestListPackages: with listPackages, the details list every package of
// the fixtures as parsed, with the ecosystem of its purl, and the policy's
// outcome does not change; without it they list none.
func TestListPackages(t *testing.T) {
	for _, name := range []string{"alpine.spdx.json", "app.cdx.json", "ecosystems.cdx.json", "ecosystems.spdx.json"} {
		t.Run(name, func(t *testing.T) {
			doc := parse(t, name)
			c := sbom.Config{DeniedLicenses: []string{"GPL-3.0-only"}}
			off := newVerifier(t, c).Check(doc, now)
			c.ListPackages = true
			on := newVerifier(t, c).Check(doc, now)
			if _, ok := off.Details["packageList"]; ok {
				t.Errorf("packageList without listPackages: %v", off.Details)
			}
			if on.Outcome != off.Outcome || on.Reason != off.Reason {
				t.Errorf("listing changed the result: %s %q, was %s %q", on.Outcome, on.Reason, off.Outcome, off.Reason)
			}
			list, _ := on.Details["packageList"].([]any)
			if len(list) != len(doc.Packages) || on.Details["morePackageList"] != nil {
				t.Fatalf("%d packages listed (more: %v), want %d", len(list), on.Details["morePackageList"], len(doc.Packages))
			}
			for i, e := range list {
				p := doc.Packages[i]
				want := map[string]any{"name": p.Name, "version": p.Version, "purl": p.PURL, "license": p.License, "ecosystem": sbom.Ecosystem(p.PURL)}
				if fmt.Sprint(e) != fmt.Sprint(want) {
					t.Errorf("entry %d: %v, want %v", i, e, want)
				}
			}
		})
	}
	// The ecosystems fixtures carry one package per purl type.
	var got []string
	for _, e := range newVerifier(t, sbom.Config{ListPackages: true}).Check(parse(t, "ecosystems.cdx.json"), now).Details["packageList"].([]any) {
		got = append(got, e.(map[string]any)["ecosystem"].(string))
	}
	t.Logf("ecosystems: %v", got)
	for _, want := range []string{"deb", "rpm", "npm", "pypi"} {
		if !strings.Contains(" "+strings.Join(got, " ")+" ", " "+want+" ") {
			t.Errorf("ecosystems %v lack %s", got, want)
		}
	}
}

func TestEcosystem(t *testing.T) {
	for purl, want := range map[string]string{
		"pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64": "apk",
		"pkg:NPM/left-pad@1.3.0":                   "npm",
		"pkg://maven/org.apache/x@1":               "maven",
		"pkg:golang":                               "",
		"":                                         "",
		"cpe:2.3:a:busybox:busybox":                "",
	} {
		if got := sbom.Ecosystem(purl); got != want {
			t.Errorf("Ecosystem(%q) = %q, want %q", purl, got, want)
		}
	}
}

// cdx returns a CycloneDX SBOM of n components whose names are name(i).
func cdx(n int, name func(int) string) *sbom.Document {
	var comps []string
	for i := range n {
		comps = append(comps, fmt.Sprintf(`{"type":"library","name":%q,"version":"1.0.%d","purl":"pkg:npm/%s@1.0.%d","licenses":[{"expression":"MIT OR Apache-2.0"}]}`, name(i), i, name(i), i))
	}
	doc, err := sbom.ParseCycloneDX([]byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[` + strings.Join(comps, ",") + `]}`))
	if err != nil {
		panic(err)
	}
	return doc
}

// TestListPackagesBounded: the listing stops at MaxPackageList entries, or
// sooner at MaxListBytes of long strings, each cut to its bound, and
// counts the rest.
func TestListPackagesBounded(t *testing.T) {
	v := newVerifier(t, sbom.Config{ListPackages: true})
	for _, tc := range []struct {
		name   string
		doc    *sbom.Document
		listed int
	}{
		{"many", cdx(sbom.MaxPackageList+700, func(i int) string { return fmt.Sprintf("p%d", i) }), sbom.MaxPackageList},
		{"long names", cdx(3000, func(i int) string { return fmt.Sprintf("%d-%s", i, strings.Repeat("x", 2000)) }), -1},
		// encoding/json writes each of these as six bytes.
		{"escaped names", cdx(3000, func(i int) string { return fmt.Sprintf("%d-%s", i, strings.Repeat("<&>", 100)) }), -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := v.Check(tc.doc, now)
			list := res.Details["packageList"].([]any)
			more, _ := res.Details["morePackageList"].(int)
			if len(list)+more != len(tc.doc.Packages) || more == 0 {
				t.Fatalf("%d listed + %d more, want %d in all, some not listed", len(list), more, len(tc.doc.Packages))
			}
			if tc.listed >= 0 && len(list) != tc.listed {
				t.Errorf("%d listed, want %d", len(list), tc.listed)
			}
			data, err := json.Marshal(list)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range list {
				if n := len(e.(map[string]any)["name"].(string)); n > 256+8 {
					t.Fatalf("a name of %d bytes listed", n)
				}
			}
			if len(data) > sbom.MaxListBytes {
				t.Errorf("the listing is %d bytes as JSON, over MaxListBytes %d", len(data), sbom.MaxListBytes)
			}
			t.Logf("%d listed, %d more, %d bytes as JSON", len(list), more, len(data))
		})
	}
}

// TestListPackagesSyft500 lists what the real syft CLI catalogs in a
// directory holding an Alpine package database of 500 packages, and
// measures the details that the listing adds to a report.
func TestListPackagesSyft500(t *testing.T) {
	dir := t.TempDir()
	var db strings.Builder
	for i := range 500 {
		fmt.Fprintf(&db, "C:Q1%027d=\nP:lib%s%d\nV:%d.%d.%d-r%d\nA:x86_64\nS:4096\nI:8192\nT:package %d\nU:https://example.org/\nL:MIT AND BSD-3-Clause\no:lib%d\nt:1712101234\nF:usr/lib\nR:lib%d.so\n\n",
			i, []string{"ssl", "curl", "xml", "yaml", "png"}[i%5], i, i%7, i%13, i%29, i%3, i, i, i)
	}
	root := filepath.Join(dir, "root")
	for name, body := range map[string]string{"etc/os-release": osRelease, "lib/apk/db/installed": db.String()} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"SYFT_CHECK_FOR_APP_UPDATE=false", "HOME=" + dir, "XDG_CACHE_HOME=" + filepath.Join(dir, "cache"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
	run(t, dir, env, "syft", "scan", "-q", "dir:"+root, "-o", "spdx-json=img.spdx.json", "-o", "cyclonedx-json=img.cdx.json")
	for _, f := range []struct {
		file  string
		parse func([]byte) (*sbom.Document, error)
	}{{"img.spdx.json", sbom.ParseSPDX}, {"img.cdx.json", sbom.ParseCycloneDX}} {
		data, err := os.ReadFile(filepath.Join(dir, f.file))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := f.parse(data)
		if err != nil {
			t.Fatal(err)
		}
		var libs int
		for _, p := range doc.Packages {
			if strings.HasPrefix(p.PURL, "pkg:apk/") {
				libs++
			}
		}
		if libs != 500 {
			t.Fatalf("%s: %d apk packages of %d, want 500", f.file, libs, len(doc.Packages))
		}
		size := func(c sbom.Config) (vouch.Result, int) {
			res := newVerifier(t, c).Check(doc, time.Now())
			data, err := json.Marshal(res.Details)
			if err != nil {
				t.Fatal(err)
			}
			return res, len(data)
		}
		_, off := size(sbom.Config{})
		res, on := size(sbom.Config{ListPackages: true})
		list := res.Details["packageList"].([]any)
		if len(list) != len(doc.Packages) {
			t.Fatalf("%s: %d listed of %d", f.file, len(list), len(doc.Packages))
		}
		var e map[string]any
		for _, x := range list {
			if x.(map[string]any)["ecosystem"] == "apk" {
				e = x.(map[string]any)
			}
		}
		if e == nil || !strings.Contains(e["license"].(string), "MIT AND BSD-3-Clause") || !strings.HasPrefix(e["name"].(string), "lib") {
			t.Errorf("%s: an apk entry %v (syft writes the license as written in the database, SPDX in parentheses)", f.file, e)
		}
		t.Logf("%s: %d packages (%d bytes of SBOM): details %d bytes as JSON, %d with listPackages (%d per package)",
			f.file, len(doc.Packages), len(data), off, on, (on-off)/len(doc.Packages))
	}
}
