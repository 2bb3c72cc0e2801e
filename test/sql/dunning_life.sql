--
-- dunning_life: one invoice's whole life under the default dunning policy,
-- run by explicit as_of dates: the reminder to the salesperson, the notice,
-- the overdue email and its weekly repeat, escalation to watch and to stop
-- (an order is then refused with CR002), a partial payment, payment in
-- full, the stop lifted, orders accepted again; and the delivery queue as
-- a consumer works through it.  No now() values are printed.
--
CREATE EXTENSION credit;
\set VERBOSITY default
\set SHOW_CONTEXT never

-- runs a statement; prints ok or its SQLSTATE and message
CREATE FUNCTION try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN 'SQLSTATE ' || SQLSTATE || ': ' || SQLERRM;
END $$;

CREATE SCHEMA sales;
CREATE TABLE sales.orders (
	id		int PRIMARY KEY,
	cust_id	bigint,
	total	numeric,
	state	text
);
SELECT credit.attach_orders('sales.orders', customer_column => 'cust_id',
							amount_column => 'total', status_column => 'state',
							open_statuses => '{open,confirmed}');
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, owner)
VALUES ('1001', 'Acme Trading', 50000, 'alice');

-- the overdue email is repeated weekly and carries a fee and 12 % interest
UPDATE credit.dunning_levels SET repeat_days = 7, fee = 20, annual_interest_rate = 12
 WHERE level_no = 3;
SELECT level_no, name, days_from_due, actions, channel, set_status, repeat_days, fee,
	   annual_interest_rate
  FROM credit.dunning_levels ORDER BY level_no;

-- invoiced on 1 January 2031, due 30 days later (the account's payment term)
INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date)
VALUES ('1001', 'INV-100', 12000, '2031-01-01');
SELECT invoice_key, amount, due_date, open_amount FROM credit.receivables;
SELECT try($$INSERT INTO sales.orders VALUES (1, 1001, 5000, 'open')$$) AS order_1;

CREATE VIEW life AS
SELECT a.status, a.dunning_status, credit.live_exposure(a.customer_key, a.exposure) AS exposure, r.dunning_level, r.dunning_repeat,
	   r.last_dunned_on, r.next_dunning_on
  FROM credit.accounts a JOIN credit.receivables r USING (customer_key);

-- four days before the due date: nothing yet
SELECT * FROM credit.run_dunning('2031-01-27');
-- three days before: the salesperson is reminded
SELECT * FROM credit.run_dunning('2031-01-28');
SELECT * FROM life;
-- a scheduler retrying the same day queues nothing
SELECT * FROM credit.run_dunning('2031-01-28');
-- the due date: a notice to the customer
SELECT * FROM credit.run_dunning('2031-01-31');
-- two days late: nothing; three days late: the overdue email
SELECT * FROM credit.run_dunning('2031-02-02');
SELECT * FROM credit.run_dunning('2031-02-03');
SELECT * FROM life;
-- a week later the email is repeated
SELECT * FROM credit.run_dunning('2031-02-09');
SELECT * FROM credit.run_dunning('2031-02-10');
-- fifteen days late: risk control is told and the account goes to watch
SELECT * FROM credit.run_dunning('2031-02-15');
SELECT * FROM life;
-- watch does not block orders
SELECT try($$INSERT INTO sales.orders VALUES (2, 1001, 1000, 'open')$$) AS order_2;
-- level 4 has no repeat: nothing on 17 February (level 3 would have repeated)
SELECT * FROM credit.run_dunning('2031-02-17');
-- a partial payment of 2000 on 20 February
INSERT INTO credit.payments (customer_key, payment_key, amount, received_on)
VALUES ('1001', 'PAY-1', 2000, '2031-02-20');
SELECT amount FROM credit.allocate((SELECT payment_id FROM credit.payments WHERE payment_key = 'PAY-1'),
								   'INV-100');
-- thirty days late (2 March): stop
SELECT * FROM credit.run_dunning('2031-03-01');
SELECT * FROM credit.run_dunning('2031-03-02');
SELECT * FROM life;
-- every new order is refused; lowering an order still passes
SELECT try($$INSERT INTO sales.orders VALUES (3, 1001, 10, 'open')$$) AS order_3;
SELECT try($$UPDATE sales.orders SET total = total + 1 WHERE id = 1$$) AS order_1_up;
SELECT try($$UPDATE sales.orders SET total = 4000 WHERE id = 1$$) AS order_1_down;
-- nothing more to do after the last level
SELECT * FROM credit.run_dunning('2031-04-30');

-- paid in full on 5 May: the next run lifts the stop
INSERT INTO credit.payments (customer_key, payment_key, amount, received_on)
VALUES ('1001', 'PAY-2', 10000, '2031-05-05');
SELECT amount FROM credit.allocate((SELECT payment_id FROM credit.payments WHERE payment_key = 'PAY-2'),
								   'INV-100');
SELECT * FROM credit.run_dunning('2031-05-05');
SELECT * FROM life;
SELECT try($$INSERT INTO sales.orders VALUES (3, 1001, 10, 'open')$$) AS order_3;
-- the credit limit is still checked
SELECT try($$INSERT INTO sales.orders VALUES (4, 1001, 46000, 'open')$$) AS order_4;
SELECT try($$INSERT INTO sales.orders VALUES (4, 1001, 44990, 'open')$$) AS order_4;

-- what was queued, and the status history
SELECT queue_id, level_no, repeat_no, as_of, channel, actions, recipient, overdue_amount,
	   days_overdue, fee, interest, status
  FROM credit.dunning_queue ORDER BY queue_id;
SELECT queue_id, message FROM credit.dunning_queue ORDER BY queue_id;
SELECT change_id, customer_key, old_status, new_status, exposure, effective_limit
  FROM credit.status_changes ORDER BY change_id;

-- a consumer: the emails first, then the rest; one delivery fails and is retried
SELECT queue_id, level_no, repeat_no, recipient, status, attempts, claimed_by
  FROM credit.claim_dunning(10, 'email', 'mailer');
SELECT queue_id, status, attempts FROM credit.complete_dunning(2, true);
SELECT queue_id, status, attempts, last_error FROM credit.complete_dunning(3, false, 'mailbox full');
SELECT queue_id, status, attempts FROM credit.complete_dunning(4, true);
SELECT try($$SELECT credit.complete_dunning(4, true)$$) AS twice;
SELECT queue_id, level_no, status, attempts, claimed_by FROM credit.claim_dunning(10, worker => 'desk');
SELECT status, count(*) FROM credit.dunning_queue GROUP BY status ORDER BY status;

-- the run needs READ COMMITTED
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT try($$SELECT credit.run_dunning('2031-05-06')$$) AS repeatable_read;
ROLLBACK;

DROP VIEW life;
DROP EXTENSION credit CASCADE;
DROP SCHEMA sales CASCADE;
DROP FUNCTION try(text);
