package store_test

import (
	"context"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/server/store/storetest"
)

func TestOpenMigratesEmptyDatabase(t *testing.T) {
	s := storetest.New(t)
	n, err := s.ChangeCounter(context.Background())
	if err != nil || n != 0 {
		t.Fatalf("ChangeCounter = %d, %v; want 0, nil", n, err)
	}
}
