package main

import (
	"context"
	"errors"
)

type testCommand struct{ m *Main }

func (c *testCommand) Run(ctx context.Context, args []string) error {
	return errors.New("kemi test is not implemented yet")
}
