package envctl

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/envhooks/envhooks/lib/history"
	"github.com/envhooks/envhooks/lib/sysexits"
)

func moveCmd(c *call) error {
	to := c.ops["to"]
	switch {
	case c.jname == "":
		return usageError("move needs jname=NAME")
	case to == "":
		return usageError("move needs to=NODE")
	case strings.Contains(to, ","):
		return usageError("move takes one node in to= (drain spreads over several)")
	}
	return c.each("move", "unregister", func(ctx context.Context, j string) error {
		return c.node.Move(ctx, j, to, MoveOptions{})
	})
}

func recoverCmd(c *call) error {
	jname, err := c.oneName("recover")
	if err != nil {
		return err
	}
	return c.node.Recover(c.ctx, jname)
}

func historyCmd(c *call) error {
	jname, err := c.oneName("history")
	if err != nil {
		return err
	}
	recs, err := c.node.records()
	if err != nil {
		return err
	}
	evs, err := history.List(c.ctx, recs, jname)
	if err != nil {
		return sysexits.Wrap(sysexits.Unavailable, err)
	}
	if c.flags.json {
		enc := json.NewEncoder(c.out)
		enc.SetIndent("", "  ")
		return enc.Encode(evs)
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tOWNER\tFROM\tGEN\tBY\tNOTE")
	for _, ev := range evs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", ev.Time.Format(time.RFC3339), ev.Event, dash(ev.Node), dash(ev.From), ev.Generation, ev.By, ev.Note)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func drainCmd(c *call) error {
	if c.jname != "" {
		return usageError("drain moves every environment of this node: it takes no jname=")
	}
	var targets []string
	if to := c.ops["to"]; to != "" {
		targets = strings.Split(to, ",")
	}
	return c.node.Drain(c.ctx, targets, c.errOut)
}

func restoreCmd(c *call) error {
	if c.jname != "" {
		return usageError("restore brings home everything drain moved: it takes no jname=")
	}
	return c.node.Restore(c.ctx, c.errOut)
}

// kindOf is the kind= operand, else what this node's inventory says, else
// a jail.
func (c *call) kindOf(jname string) string {
	if k := c.ops["kind"]; k != "" {
		return k
	}
	if rec, err := c.node.Inv.Load(jname); err == nil && rec != nil {
		return rec.Kind
	}
	return Jail
}

func startStopCmd(start bool) func(c *call) error {
	return func(c *call) error {
		verb := map[bool]string{true: "start", false: "stop"}[start]
		jname, err := c.oneName(verb)
		if err != nil {
			return err
		}
		if start {
			return c.node.Start(c.ctx, jname, c.kindOf(jname))
		}
		return c.node.Stop(c.ctx, jname, c.kindOf(jname))
	}
}

func preflightCmd(c *call) error {
	jname, err := c.oneName("preflight")
	if err != nil {
		return err
	}
	return c.node.Preflight(c.ctx, jname, c.kindOf(jname))
}
