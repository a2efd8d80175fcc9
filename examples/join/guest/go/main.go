// Command go is the join example's guest module.
package main

import (
	"github.com/wasmgrid/wasmgrid/examples/join"
	guest "github.com/wasmgrid/wasmgrid/sdk/guest/go"
)

func init() {
	guest.Filter("not_header", join.NotHeader)
	guest.Map("order_by_customer", join.OrderByCustomer)
	guest.Map("customer_country", join.CustomerCountry)
	guest.Map("revenue", join.Revenue)
	guest.Reduce("sum", join.Sum)
	guest.Map("format", join.Format)
}

func main() {}
