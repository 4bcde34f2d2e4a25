package httpapp_test

import (
	"io"
	"log/slog"
	"strconv"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
