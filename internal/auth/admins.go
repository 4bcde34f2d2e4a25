package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/db"
)

// ErrLastOwner is returned for a change that would leave no enabled owner.
var ErrLastOwner = errors.New("the last owner cannot be demoted or disabled")

// ErrWrongPassword is returned by [Service.ChangePassword] when the current password is wrong.
var ErrWrongPassword = errors.New("the current password is wrong")

// AdminView is an admin as the admins page shows it: never the password hash or TOTP secret.
type AdminView struct {
	ID                 int64
	Email              string
	Role               Role
	Disabled           bool
	MustChangePassword bool
	SecondFactor       bool
	CreatedAt          time.Time
}

// ListAdmins returns every admin, enabled ones first.
func (s *Service) ListAdmins(ctx context.Context) ([]AdminView, error) {
	rows, err := s.q.AdminList(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("list admins: %w", err)
	}
	out := make([]AdminView, 0, len(rows))
	for _, a := range rows {
		out = append(out, viewOf(a))
	}
	return out, nil
}

func viewOf(a db.Admin) AdminView {
	return AdminView{ID: a.ID, Email: a.Email, Role: Role(a.Role), Disabled: a.DisabledAt != nil,
		MustChangePassword: a.MustChangePassword, SecondFactor: secondFactorOn(a), CreatedAt: a.CreatedAt}
}

// Invite creates an admin with a random one-time password, returned once for the inviting owner to
// hand over; the first sign-in must replace it. Audited.
func (s *Service) Invite(ctx context.Context, actor audit.Actor, email string, role Role) (AdminView, string, error) {
	if !role.Valid() {
		return AdminView{}, "", fmt.Errorf("invite %s: unknown role %q", email, role)
	}
	password := GeneratePassword()
	var created db.Admin
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		a, err := s.createAdmin(ctx, tx, email, password, role, true)
		if err != nil {
			return err
		}
		created = a
		return audit.Record(ctx, tx, actor, audit.Entry{Action: "admin_invite", Detail: fmt.Sprintf("%s as %s", a.Email, role)})
	})
	if err != nil {
		return AdminView{}, "", err
	}
	return viewOf(created), password, nil
}

// SetRole changes an admin's role, refusing to demote the last enabled owner. Audited.
func (s *Service) SetRole(ctx context.Context, actor audit.Actor, adminID int64, role Role) error {
	if !role.Valid() {
		return fmt.Errorf("set role of admin %d: unknown role %q", adminID, role)
	}
	return s.changeAdmin(ctx, adminID, func(tx pgx.Tx, a db.Admin, owners []int64) error {
		if Role(a.Role) == role {
			return nil
		}
		if err := keepAnOwner(a, owners, role != RoleOwner); err != nil {
			return err
		}
		if err := s.q.AdminSetRole(ctx, tx, db.AdminSetRoleParams{ID: a.ID, Role: string(role)}); err != nil {
			return fmt.Errorf("set role of %s: %w", a.Email, err)
		}
		return audit.Record(ctx, tx, actor, audit.Entry{Action: "admin_role", Detail: fmt.Sprintf("%s: %s → %s", a.Email, a.Role, role)})
	})
}

// SetDisabled disables an admin (ending their sessions) or enables them again, refusing to disable
// the last enabled owner. Audited.
func (s *Service) SetDisabled(ctx context.Context, actor audit.Actor, adminID int64, disabled bool) error {
	return s.changeAdmin(ctx, adminID, func(tx pgx.Tx, a db.Admin, owners []int64) error {
		if (a.DisabledAt != nil) == disabled {
			return nil
		}
		if disabled {
			if err := keepAnOwner(a, owners, true); err != nil {
				return err
			}
		}
		if err := s.q.AdminSetDisabled(ctx, tx, db.AdminSetDisabledParams{ID: a.ID, Disabled: disabled}); err != nil {
			return fmt.Errorf("disable %s: %w", a.Email, err)
		}
		if err := s.q.SessionDeleteByAdmin(ctx, tx, a.ID); err != nil {
			return fmt.Errorf("end sessions of %s: %w", a.Email, err)
		}
		action := "admin_enable"
		if disabled {
			action = "admin_disable"
		}
		return audit.Record(ctx, tx, actor, audit.Entry{Action: action, Detail: a.Email})
	})
}

// changeAdmin runs change on the locked admin row, with the locked enabled owners' IDs, in one
// transaction; a missing admin is [db.ErrNotFound].
func (s *Service) changeAdmin(ctx context.Context, adminID int64, change func(pgx.Tx, db.Admin, []int64) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Owners first, then the target, always in this order, so concurrent changes do not deadlock.
		owners, err := s.q.AdminLockActiveOwners(ctx, tx)
		if err != nil {
			return fmt.Errorf("lock owners: %w", err)
		}
		a, err := s.q.AdminGetForUpdate(ctx, tx, adminID)
		if err != nil {
			return fmt.Errorf("admin %d: %w", adminID, err)
		}
		return change(tx, a, owners)
	})
}

// keepAnOwner refuses when a, an enabled owner, is about to stop being one (removing) and no
// other enabled owner is left. The caller holds the owners' row locks.
func keepAnOwner(a db.Admin, owners []int64, removing bool) error {
	if !removing || Role(a.Role) != RoleOwner || a.DisabledAt != nil {
		return nil
	}
	if len(slices.DeleteFunc(owners, func(id int64) bool { return id == a.ID })) == 0 {
		return ErrLastOwner
	}
	return nil
}

// ChangePassword replaces the signed-in admin's password after checking the current one, and
// ends every other session of theirs (the one making the change, keepToken, stays). Audited.
func (s *Service) ChangePassword(ctx context.Context, actor audit.Actor, keepToken, current, next string) error {
	if err := ValidatePassword(next); err != nil {
		return err
	}
	a, err := s.q.AdminGet(ctx, s.pool, actor.AdminID)
	if err != nil {
		return fmt.Errorf("admin %d: %w", actor.AdminID, err)
	}
	if len(current) > 1024 || !CheckPassword(a.PasswordHash, current) {
		_ = audit.Record(ctx, s.pool, actor, audit.Entry{Action: "password_change_failed", Detail: "current password wrong"})
		return ErrWrongPassword
	}
	hash, err := HashPassword(next)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.q.AdminSetPassword(ctx, tx, db.AdminSetPasswordParams{ID: a.ID, PasswordHash: hash, MustChangePassword: false}); err != nil {
			return fmt.Errorf("set password of %s: %w", a.Email, err)
		}
		n, err := s.q.SessionDeleteOthersOfAdmin(ctx, tx, db.SessionDeleteOthersOfAdminParams{AdminID: a.ID, KeepTokenHash: hashToken(keepToken)})
		if err != nil {
			return fmt.Errorf("end other sessions of %s: %w", a.Email, err)
		}
		return audit.Record(ctx, tx, actor, audit.Entry{Action: "password_change", Detail: fmt.Sprintf("%d other sessions ended", n)})
	})
}
