      *> ---------------------------------------------------------------
      *> XFER - sample service that updates many records: moves an
      *> amount from one account of indexed file ACCOUNTS to another.
      *>
      *> Inputs:
      *>   LK-FROM, LK-TO   account numbers (1 to 999999, different)
      *>   LK-AMOUNT        the amount moved (balances may go negative)
      *> Outputs:
      *>   LK-RESULT        OK, or NF (an account does not exist), SA
      *>                    (the same account twice): nothing changed;
      *>                    IO: the file failed (RETURN-CODE 8)
      *>   LK-FROM-BALANCE, LK-TO-BALANCE   the balances after the move
      *>   LK-FROM-UPDATES, LK-TO-UPDATES   how many transfers each
      *>                    account has taken part in, this one included
      *>
      *> The two accounts are read for update in account-number order,
      *> so two transfers never wait for each other in a cycle. Create
      *> ACCOUNTS first with ACCTINIT; DD_ACCOUNTS names it.
      *>
      *> RETURN-CODE: 0, or 8 when ACCOUNTS cannot be opened, read or
      *> rewritten (the file status is DISPLAYed on stderr).
      *> ---------------------------------------------------------------
       IDENTIFICATION DIVISION.
       PROGRAM-ID. XFER.

       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT ACCOUNTS ASSIGN TO EXTERNAL ACCOUNTS
               ORGANIZATION IS INDEXED
               ACCESS MODE IS RANDOM
               RECORD KEY IS ACCT-ID
               FILE STATUS IS WS-FILE-STATUS.

       DATA DIVISION.
       FILE SECTION.
       FD  ACCOUNTS.
       01  ACCT-RECORD.
           05  ACCT-ID             PIC 9(6).
           05  ACCT-BALANCE        PIC S9(11).
           05  ACCT-UPDATES        PIC 9(9).

       WORKING-STORAGE SECTION.
       01  WS-FILE-STATUS          PIC XX.
           88  WS-FILE-OK                    VALUE "00".
           88  WS-NOT-FOUND                  VALUE "23".
       01  WS-FAILED-STEP          PIC X(7).
       01  WS-FIRST                PIC 9(6).
       01  WS-SECOND               PIC 9(6).
       01  WS-FIRST-RECORD         PIC X(26).
       01  WS-SECOND-RECORD        PIC X(26).
       01  WS-STOP                 PIC X VALUE "N".
           88  WS-STOPPED                    VALUE "Y".

       LINKAGE SECTION.
       01  LK-FROM                 PIC 9(6).
       01  LK-TO                   PIC 9(6).
       01  LK-AMOUNT               PIC 9(6).
       01  LK-RESULT               PIC XX.
       01  LK-FROM-BALANCE         PIC S9(11).
       01  LK-TO-BALANCE           PIC S9(11).
       01  LK-FROM-UPDATES         PIC 9(9).
       01  LK-TO-UPDATES           PIC 9(9).

       PROCEDURE DIVISION USING LK-FROM LK-TO LK-AMOUNT LK-RESULT
                                LK-FROM-BALANCE LK-TO-BALANCE
                                LK-FROM-UPDATES LK-TO-UPDATES.
       MAIN-PARA.
      *>   WORKING-STORAGE keeps its values from one call to the next.
           MOVE "N" TO WS-STOP
           MOVE 0 TO RETURN-CODE
           MOVE "OK" TO LK-RESULT
           MOVE 0 TO LK-FROM-BALANCE LK-TO-BALANCE
                     LK-FROM-UPDATES LK-TO-UPDATES
           IF LK-FROM = LK-TO
               MOVE "SA" TO LK-RESULT
               GOBACK
           END-IF
           IF LK-FROM < LK-TO
               MOVE LK-FROM TO WS-FIRST
               MOVE LK-TO TO WS-SECOND
           ELSE
               MOVE LK-TO TO WS-FIRST
               MOVE LK-FROM TO WS-SECOND
           END-IF
           OPEN I-O ACCOUNTS
           IF NOT WS-FILE-OK
               MOVE "OPEN" TO WS-FAILED-STEP
               PERFORM FILE-FAILED
               GOBACK
           END-IF
           MOVE WS-FIRST TO ACCT-ID
           PERFORM READ-ACCOUNT
           MOVE ACCT-RECORD TO WS-FIRST-RECORD
           IF NOT WS-STOPPED
               MOVE WS-SECOND TO ACCT-ID
               PERFORM READ-ACCOUNT
               MOVE ACCT-RECORD TO WS-SECOND-RECORD
           END-IF
           IF NOT WS-STOPPED
               MOVE WS-FIRST-RECORD TO ACCT-RECORD
               PERFORM MOVE-AMOUNT
           END-IF
           IF NOT WS-STOPPED
               MOVE WS-SECOND-RECORD TO ACCT-RECORD
               PERFORM MOVE-AMOUNT
           END-IF
           CLOSE ACCOUNTS
           GOBACK.

       READ-ACCOUNT.
           READ ACCOUNTS
           IF WS-NOT-FOUND
               MOVE "NF" TO LK-RESULT
               SET WS-STOPPED TO TRUE
           ELSE
               IF NOT WS-FILE-OK
                   MOVE "READ" TO WS-FAILED-STEP
                   PERFORM FILE-FAILED
               END-IF
           END-IF.

       MOVE-AMOUNT.
           ADD 1 TO ACCT-UPDATES
           IF ACCT-ID = LK-FROM
               SUBTRACT LK-AMOUNT FROM ACCT-BALANCE
               MOVE ACCT-BALANCE TO LK-FROM-BALANCE
               MOVE ACCT-UPDATES TO LK-FROM-UPDATES
           ELSE
               ADD LK-AMOUNT TO ACCT-BALANCE
               MOVE ACCT-BALANCE TO LK-TO-BALANCE
               MOVE ACCT-UPDATES TO LK-TO-UPDATES
           END-IF
           REWRITE ACCT-RECORD
           IF NOT WS-FILE-OK
               MOVE "REWRITE" TO WS-FAILED-STEP
               PERFORM FILE-FAILED
           END-IF.

       FILE-FAILED.
           SET WS-STOPPED TO TRUE
           MOVE "IO" TO LK-RESULT
           DISPLAY "XFER: " FUNCTION TRIM(WS-FAILED-STEP)
                   " of file ACCOUNTS failed with file status "
                   WS-FILE-STATUS "; run ACCTINIT to create it, and"
                   " set DD_ACCOUNTS to its path" UPON SYSERR
           MOVE 8 TO RETURN-CODE.
