package tracking

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// gitCommit returns the commit HEAD points to in the git repository that
// contains dir, reading .git itself (worktrees, symbolic refs and
// packed-refs included), or "" when dir is not in a repository or HEAD has
// no commit yet.
func gitCommit(dir string) string {
	for {
		dotGit := filepath.Join(dir, ".git")
		if fi, err := os.Stat(dotGit); err == nil {
			gitDir := dotGit
			if !fi.IsDir() { // a worktree or submodule: "gitdir: <path>"
				b, err := os.ReadFile(dotGit)
				if err != nil {
					return ""
				}
				line := strings.TrimSpace(string(b))
				if !strings.HasPrefix(line, "gitdir:") {
					return ""
				}
				gitDir = strings.TrimSpace(strings.TrimPrefix(line, "gitdir:"))
				if !filepath.IsAbs(gitDir) {
					gitDir = filepath.Join(dir, gitDir)
				}
			}
			return resolveHEAD(gitDir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func resolveHEAD(gitDir string) string {
	common := gitDir
	if b, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
		c := strings.TrimSpace(string(b))
		if !filepath.IsAbs(c) {
			c = filepath.Join(gitDir, c)
		}
		common = c
	}
	b, err := os.ReadFile(filepath.Join(gitDir, "HEAD"))
	if err != nil {
		return ""
	}
	head := strings.TrimSpace(string(b))
	for range 10 { // symbolic refs may chain
		ref, ok := strings.CutPrefix(head, "ref:")
		if !ok {
			if isObjectID(head) {
				return head
			}
			return ""
		}
		ref = strings.TrimSpace(ref)
		if !strings.HasPrefix(ref, "refs/") || strings.Contains(ref, "..") {
			return ""
		}
		next := ""
		for _, d := range []string{gitDir, common} {
			if b, err := os.ReadFile(filepath.Join(d, filepath.FromSlash(ref))); err == nil {
				next = strings.TrimSpace(string(b))
				break
			}
		}
		if next == "" {
			next = packedRef(common, ref)
		}
		if next == "" {
			return "" // unborn branch
		}
		head = next
	}
	return ""
}

func packedRef(gitDir, ref string) string {
	f, err := os.Open(filepath.Join(gitDir, "packed-refs"))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || line[0] == '^' {
			continue
		}
		id, name, ok := strings.Cut(line, " ")
		if ok && name == ref && isObjectID(id) {
			return id
		}
	}
	return ""
}

// isObjectID accepts SHA-1 and SHA-256 object names.
func isObjectID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
