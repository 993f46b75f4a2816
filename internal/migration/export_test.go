package migration

// PerInstance makes m decide and write every instance in Go, even where SQL could move them: the
// tests compare the two ways.
func PerInstance(m *Migrator) *Migrator {
	m.perInstance = true
	return m
}
