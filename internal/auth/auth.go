// Package auth is fsmd's API keys: the keys file (a role, the SHA-256 of a key and a name per line,
// so that no key is stored in clear), new keys, and checking a presented key in constant time.
package auth

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// Role is what a key may do. Each includes the ones before it: write may read, admin may do all.
type Role int

// The roles.
const (
	None  Role = iota // no key, or one that is not known
	Read              // every GET
	Write             // create instances, send events, explain
	Admin             // definitions, migrations, reload, outbox re-drive
)

var roleNames = [...]string{None: "none", Read: "read", Write: "write", Admin: "admin"}

func (r Role) String() string { return roleNames[r] }

// ParseRole reads a role's name.
func ParseRole(s string) (Role, error) {
	for r := Read; r <= Admin; r++ {
		if roleNames[r] == s {
			return r, nil
		}
	}
	return None, fmt.Errorf("unknown role %q: the roles are read, write and admin", s)
}

// Key is one line of a keys file.
type Key struct {
	Role   Role
	Hash   [sha256.Size]byte // of the key's text
	Name   string            // recorded as the actor of what the key does
	Groups []string          // the groups of the key's holder (groups=a,b at the end of the line)
}

// Principal is who the key names.
func (k Key) Principal() Principal { return Principal{Name: k.Name, Groups: k.Groups, Role: k.Role} }

// Keys are the keys a server accepts. The zero value accepts none.
type Keys struct {
	keys []Key
}

// Names are the keys' names, in the file's order.
func (k *Keys) Names() []string {
	names := make([]string, len(k.keys))
	for i, key := range k.keys {
		names[i] = key.Name
	}
	return names
}

// Len is how many keys there are.
func (k *Keys) Len() int { return len(k.keys) }

// Prefix starts every key fsmd makes; the rest is 43 characters of base64url (32 random bytes).
const Prefix = "fsmd_"

// KeyLength is the length of a key fsmd makes.
const KeyLength = len(Prefix) + 43

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// ParseFile reads a keys file: one `ROLE SHA256-HEX-OF-KEY [NAME] [groups=A,B]` per line; blank
// lines and lines starting with # are skipped. A bad line is an error naming the file and the line; a file without
// a key is an error naming the file.
func ParseFile(path string) (*Keys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(path, f)
}

// Parse is ParseFile on a reader; name is the file's name, for errors.
func Parse(name string, r io.Reader) (*Keys, error) {
	keys := &Keys{}
	seen := map[[sha256.Size]byte]int{}
	names := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 4096)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...))
		}
		var groups []string
		if n := len(fields); n >= 3 && strings.HasPrefix(fields[n-1], "groups=") {
			var err error
			if groups, err = parseGroups(strings.TrimPrefix(fields[n-1], "groups=")); err != nil {
				return nil, bad("%v", err)
			}
			fields = fields[:n-1]
		}
		if len(fields) < 2 || len(fields) > 3 {
			return nil, bad("want ROLE SHA256-HEX-OF-KEY [NAME] [groups=A,B], found %d fields", len(fields))
		}
		role, err := ParseRole(fields[0])
		if err != nil {
			return nil, bad("%v", err)
		}
		raw, err := hex.DecodeString(fields[1])
		if err != nil || len(raw) != sha256.Size {
			return nil, bad("the key's hash must be 64 hexadecimal digits (the SHA-256 of the key; fsmd keys new prints the line)")
		}
		k := Key{Role: role, Groups: groups}
		copy(k.Hash[:], raw)
		k.Name = "key-" + strings.ToLower(fields[1][:8])
		if len(fields) == 3 {
			if !nameRE.MatchString(fields[2]) {
				return nil, bad("the name %q: want 1 to 64 letters, digits or ._@-", fields[2])
			}
			k.Name = fields[2]
		}
		if first, ok := seen[k.Hash]; ok {
			return nil, bad("the same key as line %d", first)
		}
		if first, ok := names[k.Name]; ok {
			return nil, bad("the name %q is line %d's too: the audit log could not tell them apart", k.Name, first)
		}
		seen[k.Hash], names[k.Name] = line, line
		keys.keys = append(keys.keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %v", name, line+1, err)
	}
	// A file given but empty is a mistake (keys commented out, a file not written yet), not a wish to
	// serve without keys: that is done by giving no file, and then serve listens on loopback only.
	if len(keys.keys) == 0 {
		return nil, fmt.Errorf("%s: no keys (only blank lines and comments): add a key's line (fsmd keys new prints one), or give no keys file to serve on loopback only", name)
	}
	return keys, nil
}

// parseGroups reads the groups of a keys file's line: comma-separated names, as a name is.
func parseGroups(list string) ([]string, error) {
	groups := strings.Split(list, ",")
	if len(groups) > MaxGroups {
		return nil, fmt.Errorf("%d groups; the most is %d", len(groups), MaxGroups)
	}
	for _, g := range groups {
		if !nameRE.MatchString(g) {
			return nil, fmt.Errorf("the group %q: want 1 to 64 letters, digits or ._@-", g)
		}
	}
	return groups, nil
}

// Check returns the key presented (an Authorization header's bearer token), or ok false when it is
// not one of the keys. It hashes the key and compares the hash with every key's in constant time,
// so that neither the time taken nor the answer tells how close a guess was; a malformed key is
// refused the same way as an unknown one.
func (k *Keys) Check(presented string) (Key, bool) {
	sum := sha256.Sum256([]byte(presented))
	var found Key
	ok := 0
	for _, key := range k.keys {
		if subtle.ConstantTimeCompare(sum[:], key.Hash[:]) == 1 {
			found, ok = key, 1
		}
	}
	if ok == 0 || !WellFormed(presented) {
		return Key{}, false
	}
	return found, true
}

// WellFormed reports whether s can be a key: printable ASCII without spaces, 16 to 256 characters.
func WellFormed(s string) bool {
	if len(s) < 16 || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// New makes a random key and the line of the keys file that grants it role, under name, to a
// holder in groups (none: no groups).
func New(role Role, name string, groups ...string) (key, line string, err error) {
	if role == None {
		return "", "", fmt.Errorf("a key needs a role: read, write or admin")
	}
	if name != "" && !nameRE.MatchString(name) {
		return "", "", fmt.Errorf("the name %q: want 1 to 64 letters, digits or ._@-", name)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	key = Prefix + base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(key))
	line = role.String() + " " + hex.EncodeToString(sum[:])
	if name != "" {
		line += " " + name
	}
	if len(groups) > 0 {
		if _, err := parseGroups(strings.Join(groups, ",")); err != nil {
			return "", "", err
		}
		line += " groups=" + strings.Join(groups, ",")
	}
	return key, line, nil
}
