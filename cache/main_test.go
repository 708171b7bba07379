package cache_test

import (
	"os"
	"testing"

	"github.com/redis/go-redis/v9/logging"
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial to the standard logger; the tests
	// read the cache's own state-change lines instead.
	logging.Disable()
	os.Exit(m.Run())
}
