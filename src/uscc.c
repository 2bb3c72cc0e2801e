/*-------------------------------------------------------------------------
 *
 * uscc.c
 *	  Unified social credit code (统一社会信用代码) validation, GB 32100-2015.
 *
 * A code is 18 characters from the 31-character alphabet 0-9 and the upper
 * case letters without I, O, S, V and Z.  Positions 3 to 8 are the
 * administrative division code (digits).  The 18th character is a check
 * character: with c(i) the alphabet index of character i and w(i) =
 * 3^(i-1) mod 31, it is the character of index (31 - sum(c(i) w(i)) mod 31)
 * mod 31 over i = 1..17.  credit.uscc_valid answers true or false;
 * credit.uscc_check (the check of domain credit.uscc) raises 23514 saying
 * which rule the code breaks.  No locking, no table access.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "credit.h"

PG_FUNCTION_INFO_V1(credit_uscc_valid);
PG_FUNCTION_INFO_V1(credit_uscc_check);

#define USCC_LENGTH 18

static const char uscc_alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
static const int uscc_weights[USCC_LENGTH - 1] =
{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};

typedef enum UsccFault
{
	USCC_OK,
	USCC_LENGTH_WRONG,
	USCC_BAD_CHARACTER,
	USCC_DIVISION_NOT_DIGITS,
	USCC_CHECK_WRONG
} UsccFault;

static int
uscc_index(char c)
{
	const char *p;

	if (c == '\0')
		return -1;
	p = strchr(uscc_alphabet, c);
	return p ? (int) (p - uscc_alphabet) : -1;
}

/* classify a code; *bad is the offending position (1-based) or the expected check character */
static UsccFault
uscc_examine(const char *code, int len, int *bad_pos, char *expected)
{
	int			sum = 0;
	int			i;
	const char *p = code;

	/* count characters, not bytes: a full-width digit is one wrong character */
	if (pg_mbstrlen_with_len(code, len) != USCC_LENGTH)
		return USCC_LENGTH_WRONG;
	for (i = 0; i < USCC_LENGTH; i++)
	{
		int			w = pg_mblen(p);

		if (w != 1 || uscc_index(*p) < 0)
		{
			*bad_pos = i + 1;
			return USCC_BAD_CHARACTER;
		}
		p += w;
	}
	/* from here on every character is one byte: len == USCC_LENGTH */
	for (i = 2; i < 8; i++)
	{
		if (code[i] < '0' || code[i] > '9')
		{
			*bad_pos = i + 1;
			return USCC_DIVISION_NOT_DIGITS;
		}
	}
	for (i = 0; i < USCC_LENGTH - 1; i++)
		sum += uscc_index(code[i]) * uscc_weights[i];
	*expected = uscc_alphabet[(31 - sum % 31) % 31];
	if (code[USCC_LENGTH - 1] != *expected)
		return USCC_CHECK_WRONG;
	return USCC_OK;
}

Datum
credit_uscc_valid(PG_FUNCTION_ARGS)
{
	text	   *code = PG_GETARG_TEXT_PP(0);
	int			bad_pos;
	char		expected;

	PG_RETURN_BOOL(uscc_examine(VARDATA_ANY(code), VARSIZE_ANY_EXHDR(code),
								&bad_pos, &expected) == USCC_OK);
}

Datum
credit_uscc_check(PG_FUNCTION_ARGS)
{
	text	   *arg = PG_GETARG_TEXT_PP(0);
	char	   *code = text_to_cstring(arg);
	int			len = VARSIZE_ANY_EXHDR(arg);
	int			bad_pos = 0;
	char		expected = '?';

	switch (uscc_examine(code, len, &bad_pos, &expected))
	{
		case USCC_OK:
			PG_RETURN_BOOL(true);
		case USCC_LENGTH_WRONG:
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("unified social credit code \"%s\" is not 18 characters long", code),
					 errdetail("It has %d characters.", pg_mbstrlen_with_len(code, len)),
					 errhint("A unified social credit code (GB 32100-2015) has exactly 18 characters.")));
			break;
		case USCC_BAD_CHARACTER:
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("unified social credit code \"%s\" has an invalid character at position %d",
							code, bad_pos),
					 errhint("Codes use the digits and the upper-case letters except I, O, S, V and Z.")));
			break;
		case USCC_DIVISION_NOT_DIGITS:
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("unified social credit code \"%s\" has a non-digit at position %d",
							code, bad_pos),
					 errdetail("Positions 3 to 8 are the administrative division code, six digits.")));
			break;
		case USCC_CHECK_WRONG:
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("unified social credit code \"%s\" has a wrong check character", code),
					 errdetail("The 18th character is \"%c\"; the first 17 require \"%c\".",
							   code[USCC_LENGTH - 1], expected),
					 errhint("Check the code for a mistyped character.")));
			break;
	}
	PG_RETURN_BOOL(false);		/* not reached */
}
