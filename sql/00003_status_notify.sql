-- +goose Up
-- Every change to what a subscription's status page shows is announced on the channel
-- subscription_changed (payload: the subscription's ID), when its transaction commits. Web
-- processes keep the status of the pages being polled in memory and drop an entry when it is
-- announced, so a status page that nothing changes costs no query.

-- +goose StatementBegin
CREATE FUNCTION notify_subscription_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'subscriptions' THEN
        PERFORM pg_notify('subscription_changed', NEW.id::text);
    ELSIF TG_TABLE_NAME = 'customers' THEN
        PERFORM pg_notify('subscription_changed', s.id::text) FROM subscriptions s WHERE s.customer_id = NEW.id;
    ELSE
        PERFORM pg_notify('subscription_changed', NEW.subscription_id::text);
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER subscriptions_notify AFTER UPDATE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION notify_subscription_changed();
CREATE TRIGGER customers_notify AFTER UPDATE ON customers
    FOR EACH ROW EXECUTE FUNCTION notify_subscription_changed();
CREATE TRIGGER provisioning_events_notify AFTER INSERT ON provisioning_events
    FOR EACH ROW EXECUTE FUNCTION notify_subscription_changed();
CREATE TRIGGER hetzner_actions_notify AFTER INSERT OR UPDATE ON hetzner_actions
    FOR EACH ROW EXECUTE FUNCTION notify_subscription_changed();
CREATE TRIGGER secret_receipts_notify AFTER INSERT ON secret_receipts
    FOR EACH ROW EXECUTE FUNCTION notify_subscription_changed();

-- +goose Down
DROP TRIGGER secret_receipts_notify ON secret_receipts;
DROP TRIGGER hetzner_actions_notify ON hetzner_actions;
DROP TRIGGER provisioning_events_notify ON provisioning_events;
DROP TRIGGER customers_notify ON customers;
DROP TRIGGER subscriptions_notify ON subscriptions;
DROP FUNCTION notify_subscription_changed();
