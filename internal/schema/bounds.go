package schema

// The bounds of the values fsmd keeps. They are here, with the types, so that the HTTP layer, the
// engine and the migrations refuse alike what one of the databases could not store, or what would
// make an instance too costly to read.
const (
	// MaxDepth is how deep objects and lists may nest in a request body, the outermost counting as
	// 1. SQLite's JSON functions refuse documents deeper than 1,000 levels, and each level costs a
	// frame of every recursive walk of a value.
	MaxDepth = 100
)
