package tracking

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits MLflow's client enforces when logging (mlflow/utils/validation.py).
const (
	maxKeyLength        = 250  // metric, param and tag names
	maxParamValueLength = 6000 // MAX_PARAM_VAL_LENGTH
	maxTagValueLength   = 5000 // MAX_TAG_VAL_LENGTH
	maxExperimentName   = 500
	maxAliasLength      = 255
)

var (
	// runIDPattern is MLflow's _RUN_ID_REGEX.
	runIDPattern = regexp.MustCompile(`^[a-zA-Z0-9][\w\-]{0,255}$`)
	// experimentIDPattern is MLflow's _EXPERIMENT_ID_REGEX: a folder at the
	// store root that fails it makes MLflow's experiment listing raise.
	experimentIDPattern = regexp.MustCompile(`^[a-zA-Z0-9][\w\-]{0,63}$`)
	// aliasVersionPattern: aliases that look like versions are reserved.
	aliasVersionPattern = regexp.MustCompile(`^[vV]\d+$`)
)

// isWordRune is Python's \w on str patterns: Unicode letters, numbers and
// the underscore.
func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r)
}

// validateKey checks a metric, param or tag name the way MLflow's reader
// does (_validate_metric_name and friends), so that nothing written here can
// make MLflow raise when it reads the run back: only letters, digits, '_',
// '-', '.', ' ' and '/' (which makes sub-folders), and a name that is already
// a normalised relative path. MLflow 2.17 also accepts ':', but older
// readers raise on it, so it is refused here.
func validateKey(kind, key string) error {
	if key == "" {
		return fmt.Errorf("%s name must not be empty", kind)
	}
	if n := utf8.RuneCountInString(key); n > maxKeyLength {
		return fmt.Errorf("%s name %.40q... is %d characters long, more than MLflow's limit of %d", kind, key, n, maxKeyLength)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("invalid %s name %q: not valid UTF-8", kind, key)
	}
	for _, r := range key {
		if !(isWordRune(r) || r == '/' || r == '.' || r == '-' || r == ' ') {
			return fmt.Errorf("invalid %s name %q: %q is not allowed (names may only contain letters, digits, '_', '-', '.', ' ' and '/')", kind, key, r)
		}
	}
	if norm := path.Clean(key); norm != key || norm == "." || strings.HasPrefix(norm, "..") || strings.HasPrefix(norm, "/") {
		return fmt.Errorf("invalid %s name %q: as a file path it would resolve to %q", kind, key, norm)
	}
	return nil
}

func validateValue(kind, key, value string, limit int) error {
	if !utf8.ValidString(value) {
		return fmt.Errorf("%s %q: value is not valid UTF-8", kind, key)
	}
	if n := utf8.RuneCountInString(value); n > limit {
		return fmt.Errorf("%s %q: value is %d characters long, more than MLflow's limit of %d", kind, key, n, limit)
	}
	return nil
}

// validateRelPath checks an artifact path: relative, normalised, slash
// separated, and not escaping the folder it is joined to.
func validateRelPath(kind, p string) error {
	if p == "" {
		return fmt.Errorf("%s path must not be empty", kind)
	}
	if strings.ContainsRune(p, '\\') || strings.ContainsRune(p, 0) {
		return fmt.Errorf("invalid %s path %q: use '/' as the separator", kind, p)
	}
	if path.IsAbs(p) {
		return fmt.Errorf("invalid %s path %q: must be relative", kind, p)
	}
	clean := path.Clean(p)
	if clean != p || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		return fmt.Errorf("invalid %s path %q: must be a normalised path inside the run's artifacts", kind, p)
	}
	return nil
}

// validateModelName follows the registry FileStore: a registered model is a
// folder, so its name must be one path component without '%'.
func validateModelName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("registered model name must not be empty")
	case strings.ContainsAny(name, "/\\"):
		return fmt.Errorf("invalid registered model name %q: must not contain a path separator", name)
	case strings.ContainsRune(name, '%'):
		return fmt.Errorf("invalid registered model name %q: must not contain '%%'", name)
	case name == "." || name == "..":
		return fmt.Errorf("invalid registered model name %q", name)
	case strings.ContainsRune(name, 0) || !utf8.ValidString(name):
		return fmt.Errorf("invalid registered model name %q", name)
	}
	return nil
}

// validateAlias is MLflow's _validate_model_alias_name.
func validateAlias(alias string) error {
	if alias == "" {
		return fmt.Errorf("alias must not be empty")
	}
	for _, r := range alias {
		if !(isWordRune(r) || r == '-') {
			return fmt.Errorf("invalid alias %q: aliases may only contain letters, digits, '_' and '-'", alias)
		}
	}
	if n := utf8.RuneCountInString(alias); n > maxAliasLength {
		return fmt.Errorf("alias %.40q... is longer than %d characters", alias, maxAliasLength)
	}
	if strings.EqualFold(alias, "latest") {
		return fmt.Errorf("alias %q is reserved", alias)
	}
	if aliasVersionPattern.MatchString(alias) {
		return fmt.Errorf("alias %q is reserved: it looks like a version", alias)
	}
	return nil
}

// pyFloat formats v as Python's str(float) does, which is how MLflow writes
// a metric value: the shortest repr, in positional notation with a ".0" for
// whole numbers when the decimal exponent is in [-4, 16), in scientific
// notation with at least two exponent digits otherwise, and "nan", "inf",
// "-inf" for the non-finite values (all of which Python's float() reads).
func pyFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	case v == 0:
		if math.Signbit(v) {
			return "-0.0"
		}
		return "0.0"
	}
	e := strconv.FormatFloat(v, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.LastIndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	f := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.ContainsRune(f, '.') {
		f += ".0"
	}
	return f
}

// parsePyFloat reads a value as Python's float() does for everything MLflow
// or this package writes: decimal notation and nan/inf/infinity in any case,
// with an optional sign. Hexadecimal and Go-only forms are refused.
func parsePyFloat(s string) (float64, error) {
	if s == "" || strings.ContainsAny(s, "xXpP_") {
		return 0, fmt.Errorf("invalid float %q", s)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return v, nil // Python saturates to inf / rounds to 0 as well
		}
		return 0, fmt.Errorf("invalid float %q", s)
	}
	return v, nil
}

// newRunID returns a random UUID4 as 32 lowercase hex digits, as
// uuid.uuid4().hex does for MLflow's run ids.
func newRunID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:])
}

// newExperimentID returns a random 18-digit decimal id without a leading
// zero, the form MLflow's FileStore gives new experiments
// (_generate_unique_integer_id).
func newExperimentID() string {
	var b [18]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	if b[0] == '0' {
		b[0] = '1' + b[0]%9
	}
	return string(b[:])
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var (
	nameAdjectives = []string{"amber", "bold", "brisk", "calm", "clever", "curious", "dapper", "eager", "gentle", "jolly", "lively", "lucky", "merry", "nimble", "quiet", "rare", "sleek", "sunny", "swift", "witty"}
	nameNouns      = []string{"beagle", "boxer", "collie", "corgi", "husky", "pug", "samoyed", "terrier", "abyssinian", "bengal", "birman", "bombay", "maine-coon", "persian", "ragdoll", "siamese", "sphynx", "whippet", "newfoundland", "shiba"}
)

// randomRunName makes a name like MLflow's generated ones: adjective-noun-N.
func randomRunName() string {
	var b [3]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%s-%d", nameAdjectives[int(b[0])%len(nameAdjectives)], nameNouns[int(b[1])%len(nameNouns)], int(b[2])%1000)
}
