#!/usr/bin/env python3
"""Deterministic raw data for the medallion example: the landing zone three sources write to.

    python3 generate.py DIR [--orders N]        (default 1,000,000 orders)

writes DIR/orders.csv (N orders, with the defects real feeds have: ~0.5% duplicated rows, ~0.2%
without a customer, ~0.1% with a non-positive quantity), DIR/customers.jsonl (N/20 customers, ~1%
listed twice, e-mails in mixed case with stray spaces) and DIR/products.csv (1,000 products).
The same N always gives byte-identical files (a fixed seed; no clock, no locale).
"""

import argparse
import json
import os
import random

COUNTRIES = ["NL", "DE", "FR", "BE", "ES", "IT", "PL", "SE"]
CATEGORIES = ["books", "garden", "kitchen", "toys", "tools", "sports"]


def products(path, rnd, n=1000):
    with open(path, "w", newline="") as f:
        f.write("product_id,name,category,price\n")
        for p in range(1, n + 1):
            f.write(f"{p},product-{p:04d},{rnd.choice(CATEGORIES)},{rnd.randint(199, 19999) / 100:.2f}\n")


def customers(path, rnd, n):
    with open(path, "w") as f:
        for c in range(1, n + 1):
            row = {
                "customer_id": c,
                "name": f"customer {c}",
                "email": f"  Customer.{c}@Example.COM " if c % 3 == 0 else f"customer.{c}@example.com",
                "country": rnd.choice(COUNTRIES),
                "signup_date": f"20{rnd.randint(18, 25)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
            }
            line = json.dumps(row, sort_keys=True) + "\n"
            f.write(line)
            if c % 100 == 0:
                f.write(line)  # listed twice


def orders(path, rnd, n, n_customers, n_products=1000):
    with open(path, "w", newline="") as f:
        f.write("order_id,customer_id,product_id,quantity,order_date,status\n")
        for o in range(1, n + 1):
            customer = "" if o % 500 == 0 else str(rnd.randint(1, n_customers))
            quantity = 0 if o % 1000 == 7 else rnd.randint(1, 5)
            day = f"2026-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
            status = rnd.choice(["paid", "paid", "paid", "shipped", "returned"])
            line = f"{o},{customer},{rnd.randint(1, n_products)},{quantity},{day},{status}\n"
            f.write(line)
            if o % 200 == 0:
                f.write(line)  # the feed sent it twice


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--orders", type=int, default=1_000_000)
    args = ap.parse_args()
    if args.orders < 100:
        ap.error("--orders must be at least 100")
    os.makedirs(args.dir, exist_ok=True)
    rnd = random.Random(2026)
    n_customers = max(10, args.orders // 20)
    products(os.path.join(args.dir, "products.csv"), rnd)
    customers(os.path.join(args.dir, "customers.jsonl"), rnd, n_customers)
    orders(os.path.join(args.dir, "orders.csv"), rnd, args.orders, n_customers)


if __name__ == "__main__":
    main()
