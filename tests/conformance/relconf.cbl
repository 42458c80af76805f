      *> Conformance: RELATIVE file operations and statuses, printed.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. RELCONF.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT REL ASSIGN TO "RELFILE"
               ORGANIZATION RELATIVE ACCESS DYNAMIC
               RELATIVE KEY RK
               FILE STATUS FS.
           SELECT RSEQ ASSIGN TO "RSEQFILE"
               ORGANIZATION RELATIVE ACCESS SEQUENTIAL
               RELATIVE KEY SK
               FILE STATUS FS.
       DATA DIVISION.
       FILE SECTION.
       FD REL.
       01 REL-REC PIC X(10).
       FD RSEQ.
       01 RSEQ-REC PIC X(10).
       WORKING-STORAGE SECTION.
       01 FS PIC XX.
       01 RK PIC 9(4).
       01 SK PIC 9(4).
       PROCEDURE DIVISION.
           OPEN INPUT REL DISPLAY "open missing " FS
           OPEN OUTPUT REL DISPLAY "open output " FS
           MOVE 3 TO RK MOVE "THREE" TO REL-REC PERFORM W
           MOVE 1 TO RK MOVE "ONE" TO REL-REC PERFORM W
           MOVE 7 TO RK MOVE "SEVEN" TO REL-REC PERFORM W
           MOVE 5 TO RK MOVE "FIVE" TO REL-REC PERFORM W
           MOVE 3 TO RK MOVE "AGAIN" TO REL-REC PERFORM W
           MOVE 0 TO RK MOVE "ZERO" TO REL-REC PERFORM W
           CLOSE REL DISPLAY "close " FS
           OPEN I-O REL DISPLAY "open i-o " FS
           PERFORM RN 5 TIMES
           MOVE 5 TO RK READ REL DISPLAY "read 5 " FS " " REL-REC
           MOVE 4 TO RK READ REL DISPLAY "read 4 " FS
           MOVE 0 TO RK READ REL DISPLAY "read 0 " FS
           MOVE 4 TO RK START REL KEY >= RK DISPLAY "start >= 4 " FS
           PERFORM RN 2 TIMES
           MOVE 3 TO RK START REL KEY > RK DISPLAY "start > 3 " FS
           PERFORM RN
           MOVE 6 TO RK START REL KEY = RK DISPLAY "start = 6 " FS
           MOVE 9 TO RK START REL KEY > RK DISPLAY "start > 9 " FS
           MOVE 5 TO RK MOVE "FIVE-2" TO REL-REC
           REWRITE REL-REC DISPLAY "rewrite 5 " FS
           MOVE 6 TO RK REWRITE REL-REC DISPLAY "rewrite 6 " FS
           MOVE 3 TO RK DELETE REL DISPLAY "delete 3 " FS
           DELETE REL DISPLAY "delete 3 again " FS
           MOVE 1 TO RK START REL KEY >= RK DISPLAY "start >= 1 " FS
           PERFORM RN 4 TIMES
           CLOSE REL
           OPEN OUTPUT RSEQ DISPLAY "open output seq " FS
           MOVE "A" TO RSEQ-REC WRITE RSEQ-REC DISPLAY "w " FS " " SK
           MOVE "B" TO RSEQ-REC WRITE RSEQ-REC DISPLAY "w " FS " " SK
           CLOSE RSEQ
           OPEN EXTEND RSEQ DISPLAY "open extend " FS
           MOVE "C" TO RSEQ-REC WRITE RSEQ-REC DISPLAY "w " FS " " SK
           CLOSE RSEQ
           OPEN I-O RSEQ
           REWRITE RSEQ-REC DISPLAY "rewrite before read " FS
           READ RSEQ NEXT DISPLAY "r " FS " " SK " " RSEQ-REC
           MOVE "B2" TO RSEQ-REC
           READ RSEQ NEXT DISPLAY "r " FS " " SK " " RSEQ-REC
           MOVE "B2" TO RSEQ-REC
           REWRITE RSEQ-REC DISPLAY "rewrite after read " FS
           READ RSEQ NEXT DISPLAY "r " FS " " SK " " RSEQ-REC
           DELETE RSEQ DISPLAY "delete after read " FS
           READ RSEQ NEXT DISPLAY "r " FS
           CLOSE RSEQ
           OPEN INPUT RSEQ
           PERFORM 3 TIMES
              READ RSEQ NEXT DISPLAY "r " FS " " SK " " RSEQ-REC
           END-PERFORM
           CLOSE RSEQ
           STOP RUN.
       W.
           WRITE REL-REC DISPLAY "write " RK " " FS.
       RN.
           READ REL NEXT
           IF FS < "10" DISPLAY "next " FS " " RK " " REL-REC
           ELSE DISPLAY "next " FS END-IF.
