package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// foundations are the files the client files build on: status codes and
// panics, ABI helpers, handles, validation, the remoting protocol and the
// log buffer. They must not use anything the client files declare.
var foundations = map[string]bool{
	"errors.go": true, "abi.go": true, "handles.go": true, "validate.go": true,
	"remoting.go": true, "logging.go": true, "wire.go": true,
}

func TestFoundationsUseNoClientFile(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	declaredIn := map[string]string{} // top-level name -> client file
	parsed := map[string]*ast.File{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed[f] = af
		if foundations[f] {
			continue
		}
		for _, d := range af.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					declaredIn[d.Name.Name] = f
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						declaredIn[s.Name.Name] = f
					case *ast.ValueSpec:
						for _, n := range s.Names {
							declaredIn[n.Name] = f
						}
					}
				}
			}
		}
	}
	for f := range foundations {
		af := parsed[f]
		if af == nil {
			t.Fatalf("foundation file %s is missing", f)
		}
		var uses []string
		ast.Inspect(af, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				ast.Inspect(sel.X, func(m ast.Node) bool { return visitIdent(m, declaredIn, &uses) })
				return false // a field or method name is not a top-level name
			}
			return visitIdent(n, declaredIn, &uses)
		})
		if len(uses) > 0 {
			sort.Strings(uses)
			t.Errorf("%s uses what client files declare: %s", f, strings.Join(uses, ", "))
		}
	}
}

func visitIdent(n ast.Node, declaredIn map[string]string, uses *[]string) bool {
	// names resolved inside the file (Obj set) are its own; init and main
	// are not references
	if id, ok := n.(*ast.Ident); ok && id.Obj == nil && id.Name != "init" && id.Name != "main" {
		if f, ok := declaredIn[id.Name]; ok {
			*uses = append(*uses, id.Name+" ("+f+")")
		}
	}
	return true
}
